import { finishWatchDelayMs, type TaskDelivery } from '../core/tasks.js';
import type { WorkerDeps, WorkerReply } from './handler.js';

/**
 * The finish watcher: finishes a job once nothing is pending, else looks again later, less and
 * less often, and stops after a bounded number of rounds (the reconciler finishes what is left).
 */
export async function watchFinish(delivery: TaskDelivery, deps: WorkerDeps): Promise<WorkerReply> {
  const payload = delivery.payload;
  if (payload.kind !== 'finish') throw new Error('watchFinish takes finish tasks');
  const { jobId, round } = payload;
  const log = deps.logger.child({ jobId });
  const state = await deps.lifecycle.finishIfDone(jobId, log);
  if (state !== 'pending') return { status: 200, body: { outcome: state } };
  const delayMs = finishWatchDelayMs(round);
  if (delayMs === undefined) {
    log.info({ event: 'finish.watch_stopped', round }, 'finish watcher stops; the reconciler takes over');
    return { status: 200, body: { outcome: 'stopped' } };
  }
  await deps.tasks.enqueueControl(
    { kind: 'finish', jobId, round: round + 1 },
    `${jobId}-finish-${round + 1}`,
    (deps.now ?? Date.now)() + delayMs,
  );
  return { status: 200, body: { outcome: 'watching' } };
}
