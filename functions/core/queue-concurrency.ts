import type { Quotas } from './quotas.js';

/** Cloud Tasks' ceiling on a queue's `maxConcurrentDispatches`. */
export const MAX_CONCURRENT_DISPATCHES = 5000;

/** The control queue's dispatch rate and its most concurrent dispatches (enqueue pages, finish watch). */
export const CONTROL_QUEUE_MAX_CONCURRENT = 100;

/**
 * How many deliveries each queue may hold in flight at once so that all of them together never
 * exceed what the worker serves: `workerSlots` = the worker's max instances × its concurrency
 * (requests one instance serves at once). Past that, Cloud Run queues a request for up to 10 s and
 * then answers 429 (cloud.google.com/run/docs/about-instance-autoscaling, "Exceeding maximum
 * instances"), and Cloud Tasks backs the whole queue off; a queue at its own concurrency cap instead
 * holds its tasks until a delivery ends, so a burst across several models waits in the queues.
 *
 * The control queue takes a tenth of the slots (at most {@link CONTROL_QUEUE_MAX_CONCURRENT}, at
 * least one); each model's queue gets one slot and a share of the rest in proportion to its RPM
 * (the in-flight deliveries a queue needs are its dispatch rate × their duration), floored, at most
 * Cloud Tasks' 5,000. The sum never exceeds `workerSlots`. Terraform's queues.tf computes the same
 * figures from `worker_max_instances × worker_concurrency` (test/unit/infra/queues-tf.test.ts).
 */
export function queueConcurrency(
  quotas: Pick<Quotas, 'models'>,
  workerSlots: number,
): { control: number; models: Record<string, number> } {
  const control = Math.min(CONTROL_QUEUE_MAX_CONCURRENT, Math.max(1, Math.floor(workerSlots / 10)));
  const entries = Object.entries(quotas.models);
  const spare = workerSlots - control - entries.length;
  if (spare < 0)
    throw new Error(
      `the worker serves ${workerSlots} requests at once (max instances × concurrency), fewer than one for each of ${entries.length} model queues and the control queue's ${control}: raise worker_max_instances or worker_concurrency`,
    );
  const totalRpm = entries.reduce((sum, [, q]) => sum + q.rpm, 0);
  const models = Object.fromEntries(
    entries.map(([model, q]) => [
      model,
      Math.min(MAX_CONCURRENT_DISPATCHES, 1 + Math.floor((spare * q.rpm) / totalRpm)),
    ]),
  );
  return { control, models };
}
