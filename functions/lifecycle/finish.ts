/** How a job ends (part of the lifecycle): finished once no item is pending, or cancelled. */
import { isTerminalJob, type JobRecord, type JobView } from '../core/jobs.js';
import { CANCELLED_ERROR } from '../core/results.js';
import type { Totals } from '../core/totals.js';
import type { Logger } from '../platform/logger.js';
import type { CallbackOrder } from '../platform/store/callbacks.js';
import { createCallbackSender } from './callbacks.js';
import type { LifecycleDeps } from './lifecycle.js';

/**
 * Rounds of sweep, count and freeze one run of a cancel tries before it leaves the rest to the
 * reconciler (the job stays `cancelPending`, its counts still read from the counters).
 */
const CANCEL_ROUNDS = 5;

/** The ending half of the lifecycle (spread into it); `viewOf` is the lifecycle's `view`. */
export function createJobFinisher(
  deps: LifecycleDeps,
  clock: () => number,
  viewOf: (jobId: string) => Promise<JobView | undefined>,
) {
  const { jobs, items, counters, ledger } = deps.stores;
  const sender = createCallbackSender(deps, clock, viewOf);
  /** The outbox record the commit that ends `job` writes, if it has a callback. */
  const callbackOrder = (job: JobRecord): CallbackOrder | undefined =>
    job.callbackUrl ? { url: job.callbackUrl, sinceMs: clock() } : undefined;

  const finisher = {
    ...sender,

    /**
     * Turns the job terminal when no item is pending; exactly one caller wins, and its commit also
     * writes the job's callback to the outbox. Says whether the job was already terminal (or
     * unknown), is now finished, or still has pending items.
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
        const order = callbackOrder(job);
        if (!(await jobs.finish(jobId, job.version, 'succeeded', sum, job.startedAt, order))) continue;
        // Its reservations are all behind it now; what its answers counted goes to the model's evidence.
        const evidence = await counters.evidence(jobId, job.counterShards).catch((err: Error) => {
          // Best effort: the model learns nothing from this job, the job is finished all the same.
          log.warn(
            { event: 'job.evidence_failed', jobId, err: err.message },
            'could not read token evidence',
          );
          return undefined;
        });
        await ledger.dropJob(job.model, jobId, evidence);
        log.info({ event: 'job.finished', jobId, counts: sum.counts, costUsd: sum.costUsd }, 'job finished');
        if (order) await sendNow(jobId, log);
        return 'finished';
      }
      throw new Error(`job ${jobId} kept changing while it was being finished; try again`);
    },

    /**
     * Cancels the job: it turns terminal at once (so no new Gemini call starts), then its slots
     * are given back and its pending items end as cancelled. A cancel that stops halfway is
     * finished by `finishCancel` from the reconciler. Undefined for an unknown job. `turnedOthers`
     * runs as soon as the job is terminal, before the slower rest: a pipeline's unit jobs turn
     * terminal too (./pipelines.ts), so none of their calls starts while the pipeline is swept.
     */
    async cancel(
      jobId: string,
      turnedOthers?: (job: JobRecord) => Promise<void>,
    ): Promise<{ view: JobView; changed: boolean } | undefined> {
      const turned = await jobs.cancel(jobId);
      if (!turned) return undefined;
      await turnedOthers?.(turned.job);
      if (turned.changed) await finisher.finishCancel(turned.job);
      const view = await viewOf(jobId);
      return view ? { view, changed: turned.changed } : undefined;
    },

    /**
     * The second half of a cancel: idempotent, so the reconciler can run it again after a crash. True
     * only for the call that froze the totals; its commit also writes the job's callback to the outbox.
     *
     * Why the frozen totals always equal the items: an item's terminal state is final (every item
     * write is conditional on the version its writer read, and nothing writes a terminal item), so
     * once a count sees no pending item, no count can change any more. A delivery that read the job
     * before the cancel can still take an item's lease between the sweep's read and its write, and
     * the item then survives the sweep; so each round sweeps, counts, and freezes only when nothing
     * is pending. A count is several aggregation queries, each at its own instant: the one that finds
     * nothing pending shows every item had ended before it finished, so a second count, started
     * after it, reads only final items and is exact (tokens and cost included): that one is frozen.
     * An item that keeps surviving (its delivery still writes it) leaves the job `cancelPending`,
     * with no totals frozen, until a later run (the reconciler's) finds it ended.
     */
    async finishCancel(job: JobRecord, log: Logger = deps.logger): Promise<boolean> {
      await ledger.releaseJob(job.model, job.id);
      let current: JobRecord | undefined = job;
      let swept = 0;
      for (let round = 0; current?.cancelPending && round < CANCEL_ROUNDS; round++) {
        swept += await sweep(current, log);
        const sum = await finalCounts(current);
        // Workers still write the job meanwhile (a delivery in flight): a lost race is read again,
        // not left to the reconciler, whose next round is minutes away.
        const order = callbackOrder(current);
        if (sum && (await jobs.completeCancel(job.id, sum, current.version, order))) {
          log.info({ event: 'job.cancelled', jobId: job.id, swept, counts: sum.counts }, 'job cancelled');
          if (order) await sendNow(job.id, log);
          return true;
        }
        current = await jobs.get(job.id);
      }
      if (current?.cancelPending) {
        log.warn(
          { event: 'job.cancel_unsettled', jobId: job.id, swept },
          'an item is still being written; the reconciler finishes the cancel',
        );
      }
      return false;
    },
  };

  /** Ends the job's pending items as cancelled and deletes their tasks; how many it ended. */
  async function sweep(job: JobRecord, log: Logger): Promise<number> {
    const sweptIds = await items.sweepPending(job.id, { state: 'cancelled', error: CANCELLED_ERROR });
    // Their tasks would still take the queue's dispatches (at the model's rate) only to end at
    // once: delete them, so the next job on the model starts without waiting behind them.
    // Only items enqueued so far have a task (batch items never do).
    const withTasks = job.mode === 'batch' ? [] : sweptIds.filter((id) => Number(id) < job.enqueuedThrough);
    if (withTasks.length === 0) return sweptIds.length;
    await deps.tasks
      .deleteItems(job.model, job.id, withTasks)
      .catch((err: Error) =>
        log.warn(
          { event: 'job.cancel_tasks_left', jobId: job.id, err: err.message },
          'could not delete the tasks of cancelled items',
        ),
      );
    return sweptIds.length;
  }

  /**
   * The job's exact totals once no item is pending, else undefined (see `finishCancel`). The sweep
   * does not touch the counters: the items themselves are counted.
   */
  async function finalCounts(job: JobRecord): Promise<Totals | undefined> {
    const first = await items.countStates(job.id, job.total);
    if (first.counts.pending > 0) return undefined;
    return items.countStates(job.id, job.total);
  }

  /**
   * The attempt right after the job ended, through its outbox record. A failure here loses nothing:
   * the record stays due and the tick sends it.
   */
  async function sendNow(jobId: string, log: Logger): Promise<void> {
    await sender
      .deliverCallbackNow(jobId, log)
      .catch((err: Error) =>
        log.warn(
          { event: 'job.callback_deferred', jobId, err: err.message },
          'callback not tried now; the tick sends it',
        ),
      );
  }

  return finisher;
}
