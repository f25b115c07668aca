import { isTerminalJob, type JobRecord } from '../core/jobs.js';
import type { Logger } from '../platform/logger.js';
import type { Stores } from '../platform/store/index.js';
import type { TaskQueue } from '../platform/task-queue.js';
import type { Lifecycle } from './lifecycle.js';
import type { Planner } from './plan.js';

/**
 * The reconciler: a sweeper, not hope, closes what crashed. Run on every scheduler tick, bounded
 * per run, idempotent (two ticks at once do no harm: every write is guarded by a precondition or a
 * task name):
 * - items whose lease ran out with no outcome get a new task (their delivery died, or its task
 *   was deleted after its last attempt); after {@link MAX_ROUNDS} such rounds they fail with the reason;
 * - jobs whose enqueuing stalled (the first task never created, a control task out of attempts)
 *   are enqueued again from where they stopped;
 * - cancels that stopped halfway are finished;
 * - live jobs with nothing pending are finished (finish watchers are bounded and may have stopped).
 * Every action is logged with a stable event name and counted in the job's view (`reconciled`).
 */
export interface ReconcileDeps {
  stores: Pick<Stores, 'jobs' | 'items'>;
  lifecycle: Lifecycle;
  planner: Planner;
  tasks: Pick<TaskQueue, 'enqueueControl'>;
  logger: Logger;
  /** How long enqueuing or a cancel may stand still before the reconciler acts. */
  stallMs: number;
  now?: () => number;
  /** Bounds of one run. */
  limits?: { items?: number; jobs?: number };
}

export interface ReconcileReport {
  retasked: number;
  failed: number;
  reenqueued: number;
  cancelsResumed: number;
  finished: number;
}

/** New tasks an item may get from the reconciler before it is failed. */
export const MAX_ROUNDS = 3;

export async function reconcile(deps: ReconcileDeps): Promise<ReconcileReport> {
  const clock = deps.now ?? Date.now;
  const report: ReconcileReport = { retasked: 0, failed: 0, reenqueued: 0, cancelsResumed: 0, finished: 0 };
  const { jobs, items } = deps.stores;
  const jobCache = new Map<string, JobRecord | undefined>();
  const jobOf = async (id: string) => {
    if (!jobCache.has(id)) jobCache.set(id, await jobs.get(id));
    return jobCache.get(id);
  };

  for (const item of await items.listExpiredLeases(clock(), deps.limits?.items ?? 200)) {
    const job = await jobOf(item.jobId);
    // A cancelled job's items are the cancel's to end (below); an unknown job has nothing to run.
    if (!job || isTerminalJob(job.status)) continue;
    const log = deps.logger.child({ jobId: job.id, itemId: item.id });
    const ref = { jobId: job.id, itemId: item.id, version: item.version, shards: job.counterShards };
    if (item.rounds >= MAX_ROUNDS) {
      const message = `No delivery finished the item: its lease ran out ${item.rounds + 1} times (${item.attempts} attempts).`;
      if (await items.settle(ref, { state: 'failed', error: { code: 500, status: 'ABORTED', message } })) {
        report.failed++;
        await jobs.countReconcile(job.id, 'failed');
        log.warn({ event: 'reconcile.item_failed', rounds: item.rounds }, message);
      }
      continue;
    }
    if (!(await items.retask(ref))) continue;
    const slotMs = await deps.planner.retask(job, item, item.rounds + 1);
    report.retasked++;
    await jobs.countReconcile(job.id, 'retasked');
    log.warn(
      { event: 'reconcile.item_retasked', round: item.rounds + 1, slotMs },
      'lease ran out with no outcome; new task',
    );
  }

  for (const job of await jobs.listUnsettled(deps.limits?.jobs ?? 100)) {
    const log = deps.logger.child({ jobId: job.id });
    if (job.status === 'cancelled') {
      if (!job.cancelPending || clock() - (job.finishedAt?.getTime() ?? 0) < deps.stallMs) continue;
      // Two ticks at once: only the one that froze the totals counts it.
      if (!(await deps.lifecycle.finishCancel(job, log))) continue;
      report.cancelsResumed++;
      await jobs.countReconcile(job.id, 'cancelsResumed');
      log.warn({ event: 'reconcile.cancel_resumed' }, 'a cancel stopped halfway; finished it');
      continue;
    }
    // Live jobs are left alone until their enqueuing has stood still for `stallMs`.
    if (isTerminalJob(job.status) || clock() < job.enqueueDueMs) continue;
    if (job.enqueuedThrough < job.total) {
      const through = job.enqueuedThrough;
      // Take the stall first (a precondition: of two ticks at once, one wins), then start enqueuing;
      // if that fails, the next stall tries again.
      if (!(await jobs.setEnqueued(job.id, through, clock() + deps.stallMs, job.version))) continue;
      await deps.tasks.enqueueControl(
        { kind: 'enqueue', jobId: job.id, from: through },
        `${job.id}-enqueue-${through}-r${Math.floor(job.enqueueDueMs / 1000)}`,
      );
      report.reenqueued++;
      await jobs.countReconcile(job.id, 'reenqueued');
      log.warn({ event: 'reconcile.enqueue_restarted', through }, 'enqueuing stalled; started it again');
      continue;
    }
    if ((await deps.lifecycle.finishIfDone(job.id, log)) === 'finished') {
      report.finished++;
      await jobs.countReconcile(job.id, 'finishes');
      log.info({ event: 'reconcile.job_finished' }, 'nothing pending; the sweep finished the job');
    }
  }
  return report;
}
