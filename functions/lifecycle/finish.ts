/** How a job ends (part of the lifecycle): finished once no item is pending, or cancelled. */
import { isTerminalJob, type JobRecord, type JobView, toJobView } from '../core/jobs.js';
import { CANCELLED_ERROR } from '../core/results.js';
import type { Logger } from '../platform/logger.js';
import type { LifecycleDeps } from './lifecycle.js';

/** Times a cancel tries to freeze its totals against concurrent writes of the job. */
const CANCEL_FREEZE_ROUNDS = 5;

/** The ending half of the lifecycle (spread into it); `viewOf` is the lifecycle's `view`. */
export function createJobFinisher(
  deps: LifecycleDeps,
  clock: () => number,
  viewOf: (jobId: string) => Promise<JobView | undefined>,
) {
  const { jobs, items, counters, ledger } = deps.stores;
  const finisher = {
    /**
     * Turns the job terminal when no item is pending; exactly one caller wins, and only it
     * notifies. Says whether the job was already terminal (or unknown), is now finished, or still
     * has pending items.
     */
    async finishIfDone(
      jobId: string,
      log: Logger = deps.logger,
    ): Promise<'terminal' | 'finished' | 'pending'> {
      // A precondition on the job's version, not a transaction: when the last items and the finish
      // watcher all try at once, transactions wait on each other's locks for seconds.
      for (let attempt = 0; attempt < 5; attempt++) {
        const job = await jobs.get(jobId);
        if (!job || isTerminalJob(job.status)) return 'terminal';
        const sum = await counters.totals(jobId, job.total, job.counterShards, job.extraCounters);
        if (sum.counts.pending > 0) return 'pending';
        if (!(await jobs.finish(jobId, job.version, 'succeeded', sum, job.startedAt))) continue;
        // Its reservations are all behind it now.
        await ledger.dropJob(job.model, jobId);
        const view = toJobView({ ...job, status: 'succeeded', finishedAt: new Date(clock()) }, sum);
        log.info({ event: 'job.finished', jobId, counts: sum.counts, costUsd: sum.costUsd }, 'job finished');
        await notifyOnce(job, view, log);
        return 'finished';
      }
      throw new Error(`job ${jobId} kept changing while it was being finished; try again`);
    },

    /**
     * Cancels the job: it turns terminal at once (so no new Gemini call starts), then its slots
     * are given back and its pending items end as cancelled. A cancel that stops halfway is
     * finished by `finishCancel` from the reconciler. Undefined for an unknown job.
     */
    async cancel(jobId: string): Promise<{ view: JobView; changed: boolean } | undefined> {
      const turned = await jobs.cancel(jobId);
      if (!turned) return undefined;
      if (turned.changed) await finisher.finishCancel(turned.job);
      const view = await viewOf(jobId);
      return view ? { view, changed: turned.changed } : undefined;
    },

    /**
     * The second half of a cancel: idempotent, so the reconciler can run it again after a crash. True
     * only for the call that froze the totals (the job still at `job.version`); only it notifies.
     */
    async finishCancel(job: JobRecord, log: Logger = deps.logger): Promise<boolean> {
      await ledger.releaseJob(job.model, job.id);
      const sweptIds = await items.sweepPending(job.id, { state: 'cancelled', error: CANCELLED_ERROR });
      const swept = sweptIds.length;
      // Their tasks would still take the queue's dispatches (at the model's rate) only to end at
      // once: delete them, so the next job on the model starts without waiting behind them.
      // Only items enqueued so far have a task (batch items never do).
      const withTasks = job.mode === 'batch' ? [] : sweptIds.filter((id) => Number(id) < job.enqueuedThrough);
      await deps.tasks
        .deleteItems(job.model, job.id, withTasks)
        .catch((err: Error) =>
          log.warn(
            { event: 'job.cancel_tasks_left', jobId: job.id, err: err.message },
            'could not delete the tasks of cancelled items',
          ),
        );
      // The sweep does not touch the counters: count the final states once, exactly. Workers still
      // write the job meanwhile (a delivery in flight): a lost race is read again, not left to the
      // reconciler, whose next round is minutes away while the view shows swept items as pending.
      let current: JobRecord | undefined = job;
      for (let round = 0; current?.cancelPending && round < CANCEL_FREEZE_ROUNDS; round++) {
        const sum = await items.countStates(job.id, job.total);
        if (await jobs.completeCancel(job.id, sum, current.version)) {
          log.info({ event: 'job.cancelled', jobId: job.id, swept, counts: sum.counts }, 'job cancelled');
          const after = await jobs.get(job.id);
          if (after) await notifyOnce(after, toJobView(after, sum), log);
          return true;
        }
        current = await jobs.get(job.id);
      }
      return false;
    },
  };

  async function notifyOnce(job: JobRecord, view: JobView, log: Logger): Promise<void> {
    if (!job.callbackUrl) return;
    await deps
      .notify(job.callbackUrl, view)
      .catch((err: Error) =>
        log.error({ event: 'job.callback_failed', jobId: job.id, err: err.message }, 'callback failed'),
      );
  }

  return finisher;
}
