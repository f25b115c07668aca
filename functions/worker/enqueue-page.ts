import { randomUUID } from 'node:crypto';
import { isTerminalJob, type JobRecord } from '../core/jobs.js';
import { FINISH_WATCH_INTERVAL_MS, type TaskDelivery } from '../core/tasks.js';
import type { WorkerDeps, WorkerReply } from './handler.js';

/**
 * How long one delivery's hold on a job's enqueuing lasts (taken again at every page): longer than a
 * page takes on a loaded machine; a delivery that died is taken over by the queue's retry after it.
 */
export const ENQUEUE_HOLD_MS = 30_000;

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
  let job = await deps.lifecycle.getJob(jobId);
  if (!job) return { status: 200, body: { outcome: 'missing' } };
  if (isTerminalJob(job.status)) return { status: 200, body: { outcome: 'terminal' } };
  if (!Object.hasOwn(deps.quotas.models, job.model))
    return { status: 200, body: { outcome: 'unknown-model' } };
  // One delivery enqueues a job at a time: a second delivery of the same task (Cloud Tasks delivers
  // at least once) would plan the same items on the ledger again and create their tasks again, cut
  // differently. It is answered 500, so the queue tries it again: by then the holder has finished
  // (the job is enqueued, nothing to do) or died (its hold ran out: the retry takes over).
  const holder = ranged ? undefined : randomUUID();
  const hold = async () => !holder || deps.lifecycle.holdEnqueue(jobId, holder, ENQUEUE_HOLD_MS);
  if (!(await hold())) {
    log.info({ event: 'enqueue.held' }, 'another delivery is enqueuing the job; trying again later');
    return { status: 500, body: { outcome: 'held' } };
  }
  /** Gives the hold up before the task that goes on exists (its delivery takes the hold). */
  const release = async () => {
    if (holder) await deps.lifecycle.releaseEnqueue(jobId, holder);
  };
  try {
    // Where the holder before stopped (it may have finished between the read above and the hold).
    if (holder) job = (await deps.lifecycle.getJob(jobId)) ?? job;
    return await enqueueFrom(job, ranged ? from : Math.max(from, job.enqueuedThrough));
  } catch (err) {
    // A store or queue error: the queue's retry of this task takes the hold at once.
    await release().catch(() => undefined);
    throw err;
  }

  async function enqueueFrom(job: JobRecord, start: number): Promise<WorkerReply> {
    let through = start;
    while (through < Math.min(job.total, end)) {
      if (now() - started > deps.enqueueBudgetMs) {
        await release();
        await deps.tasks.enqueueControl(
          { kind: 'enqueue', jobId, from: through, ...(ranged ? { to } : {}) },
          name(through),
        );
        log.info({ event: 'enqueue.handover', through }, 'enqueue continues in a new task');
        return { status: 200, body: { outcome: 'handover', detail: String(through) } };
      }
      // Each later page keeps the hold; one lost (this delivery stalled past it) stops here.
      if (through > start && !(await hold()))
        return { status: 200, body: { outcome: 'hold-lost', detail: String(through) } };
      const page = await deps.planner.enqueuePage(job, through, to);
      through = page.through;
      if (page.resumeAtMs !== undefined) {
        await release();
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
    await release();
    await deps.tasks.enqueueControl(
      { kind: 'finish', jobId, round: 0 },
      ranged ? `${jobId}-finish-0-${from}` : `${jobId}-finish-0`,
      now() + FINISH_WATCH_INTERVAL_MS,
    );
    log.info({ event: 'enqueue.done', through, ms: now() - started }, 'all item tasks created');
    return { status: 200, body: { outcome: 'enqueued', detail: String(through) } };
  }
}
