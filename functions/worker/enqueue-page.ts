import { isTerminalJob } from '../core/jobs.js';
import { FINISH_WATCH_INTERVAL_MS, type TaskDelivery } from '../core/tasks.js';
import type { WorkerDeps, WorkerReply } from './handler.js';

/**
 * Creates the item tasks of a job, page by page, from where the last run stopped (`enqueuedThrough`):
 * a crashed run is retried by Cloud Tasks and resumes; a long one hands over to a fresh control
 * task; a stalled one is started again by the reconciler. Each page first reserves its dispatch
 * slots on the model's ledger, so each task is scheduled when the queue can send it within RPM and
 * TPM; items are planned at most ten minutes ahead and a control task comes back for the rest.
 */
export async function enqueuePage(delivery: TaskDelivery, deps: WorkerDeps): Promise<WorkerReply> {
  const payload = delivery.payload;
  if (payload.kind !== 'enqueue') throw new Error('enqueuePage takes enqueue tasks');
  const { jobId, from, to } = payload;
  const ranged = to !== undefined;
  const end = to ?? Number.POSITIVE_INFINITY;
  // A range's name: the batch part's, so its handovers do not collide with the job's own enqueuing.
  const name = (through: number) =>
    ranged ? `${jobId}-enqueue-${from}-${to}-at-${through}` : `${jobId}-enqueue-${through}`;
  const log = deps.logger.child({ jobId });
  const now = deps.now ?? Date.now;
  const started = now();
  const job = await deps.lifecycle.getJob(jobId);
  if (!job) return { status: 200, body: { outcome: 'missing' } };
  if (isTerminalJob(job.status)) return { status: 200, body: { outcome: 'terminal' } };
  if (!Object.hasOwn(deps.quotas.models, job.model))
    return { status: 200, body: { outcome: 'unknown-model' } };
  let through = ranged ? from : Math.max(from, job.enqueuedThrough);
  while (through < Math.min(job.total, end)) {
    if (now() - started > deps.enqueueBudgetMs) {
      await deps.tasks.enqueueControl(
        { kind: 'enqueue', jobId, from: through, ...(ranged ? { to } : {}) },
        name(through),
      );
      log.info({ event: 'enqueue.handover', through }, 'enqueue continues in a new task');
      return { status: 200, body: { outcome: 'handover', detail: String(through) } };
    }
    const page = await deps.planner.enqueuePage(job, through, to);
    through = page.through;
    if (page.resumeAtMs !== undefined) {
      await deps.tasks.enqueueControl(
        { kind: 'enqueue', jobId, from: through, ...(ranged ? { to } : {}) },
        `${name(through)}-at${Math.floor(page.resumeAtMs / 1000)}`,
        page.resumeAtMs,
      );
      log.info(
        { event: 'enqueue.paced', through, atMs: page.resumeAtMs },
        'planned as far ahead as allowed; the rest later',
      );
      return { status: 200, body: { outcome: 'paced', detail: String(through) } };
    }
    if (page.done) break;
  }
  await deps.tasks.enqueueControl(
    { kind: 'finish', jobId, round: 0 },
    ranged ? `${jobId}-finish-0-${from}` : `${jobId}-finish-0`,
    now() + FINISH_WATCH_INTERVAL_MS,
  );
  log.info({ event: 'enqueue.done', through, ms: now() - started }, 'all item tasks created');
  return { status: 200, body: { outcome: 'enqueued', detail: String(through) } };
}
