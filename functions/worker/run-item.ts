import { budgetError } from '../core/budget.js';
import { usageFrom } from '../core/cost.js';
import type { ItemError, ItemOutcome } from '../core/jobs.js';
import { REPLAN_AFTER_MS } from '../core/rate.js';
import { isLastAttempt, type TaskDelivery } from '../core/tasks.js';
import { AnswerParkedError } from '../lifecycle/lifecycle.js';
import type { GeminiCallError } from '../platform/gemini/client.js';
import { type FailedCall, flexShed, geminiFailed } from './call-failed.js';
import { checkedOf, recordChecked, recordParkedFailure, requestFor } from './check-answer.js';
import type { WorkerDeps, WorkerReply } from './handler.js';
import {
  beforeCallMs,
  beforeReplanMs,
  keepLease,
  REPLAN_WAIT_MAX_MS,
  timedOut,
  within,
} from './keep-lease.js';
import { budgetEstimate, isFlexShed, planCall, priceAnswer } from './tier-call.js';
import { handOverFor, replyUnclaimed } from './unclaimed.js';

/**
 * Items within this many of the end of the job check, when they finish, whether the job is done:
 * items are planned in input order, so the last to finish is almost always one of them and the job
 * ends the moment it does. Any other order is caught by the finish watcher. Each check reads every
 * counter shard, so few items do it: dozens of checks at once stall the last items behind them.
 */
export function checksCompletion(index: number, total: number): boolean {
  return index >= total - Math.max(8, Math.ceil(total * 0.005));
}

/**
 * Runs one item: claim it, fetch its media, check its plan, call Gemini, record the outcome exactly
 * once. Every path ends in a state: on the queue's last attempt (after which Cloud Tasks deletes the
 * task) a failure is recorded, or, when another delivery holds the item or a paid answer had to be
 * parked, the item is handed to a new task. A paid answer is never bought twice: the lease is renewed
 * before the call if the delivery has spent a while (`keep-lease.ts`), a lost lease stops it, and an
 * answer parked by an earlier delivery is recorded instead of calling Gemini.
 */
export async function runItem(delivery: TaskDelivery, deps: WorkerDeps): Promise<WorkerReply> {
  const payload = delivery.payload;
  if (payload.kind !== 'item') throw new Error('runItem takes item tasks');
  const taskPlannedMs = payload.plannedMs;
  const { jobId, itemId } = payload;
  const log = deps.logger.child({ jobId, itemId, attempt: delivery.retryCount + 1 });
  const clock = deps.now ?? Date.now;
  const lastAttempt = isLastAttempt(delivery.retryCount, deps.quotas.queue.maxAttempts);
  const t0 = clock();
  let geminiMs = 0;

  const handOver = handOverFor(delivery, deps, log);

  let claim: Awaited<ReturnType<WorkerDeps['lifecycle']['claim']>>;
  try {
    claim = await deps.lifecycle.claim(jobId, itemId, deps.leaseMs);
  } catch (err) {
    // The store failed us on the last attempt: the item cannot even be read, let alone recorded.
    // Hand it on, due after the store has had a minute to recover.
    if (!lastAttempt || !delivery.queueName) throw err;
    return handOver(
      clock() + 60_000,
      'error',
      { reason: (err as Error).message },
      'last attempt could not read the item; new task',
    );
  }
  if (claim.outcome !== 'claimed') return replyUnclaimed(claim, delivery, deps, log);

  const { item, job, parked } = claim;
  /** The lease this delivery holds (renewed while it works: a new version each time). */
  let lease = claim.lease;
  const finish = (outcome: ItemOutcome, event: string) =>
    record(() => deps.lifecycle.complete(lease, outcome), outcome.state, event);
  /** `finish`, then `after` once the outcome was written (the response cache's steps). */
  const finishThen = (outcome: ItemOutcome, event: string, after: () => Promise<void> | undefined) =>
    record(
      async () => {
        const written = await deps.lifecycle.complete(lease, outcome);
        if (written) await after();
        return written;
      },
      outcome.state,
      event,
    );
  /** Writes the outcome (`write`: false when the lease was lost) and finishes the job if it was the last. */
  const record = async (
    write: () => Promise<boolean>,
    state: string,
    event: string,
  ): Promise<WorkerReply> => {
    const written = await write();
    // A pipeline's unit: its item moves on to its next step (lifecycle/pipeline-advance.ts).
    if (written && job.unitOf) await deps.lifecycle.pipeline.unitEnded(job, item.index, deps.planner, log);
    if (written && checksCompletion(item.index, job.total)) await deps.lifecycle.finishIfDone(jobId, log);
    const totalMs = clock() - t0;
    // overheadMs is what the system adds to Gemini's own time: the benchmark's per-item overhead.
    log.info(
      {
        event,
        written,
        state,
        totalMs,
        geminiMs,
        overheadMs: totalMs - geminiMs,
        behindPlanMs,
      },
      `item ${state}`,
    );
    return { status: 200, body: { outcome: state } };
  };
  const fail = (error: ItemError, event: string) => finish({ state: 'failed', error }, event);
  const retryLater = async (status: number, retryAfterSeconds: number | undefined, outcome: string) => {
    await deps.lifecycle.release(lease);
    return { status, ...(retryAfterSeconds ? { retryAfterSeconds } : {}), body: { outcome } };
  };

  const plannedMs = item.plannedMs ?? taskPlannedMs;
  /** How far behind its plan this delivery started (for logs: a queue keeping up stays near 0). */
  const behindPlanMs = plannedMs === undefined ? undefined : t0 - plannedMs;
  /** What a failed call's step needs of this delivery (./call-failed.ts). */
  const failedCall: FailedCall = {
    delivery,
    job,
    item,
    log,
    lastAttempt,
    plannedMs,
    fail,
    retryLater,
    handOver,
    release: (plannedMs) => deps.lifecycle.release(lease, plannedMs),
  };

  try {
    return await attempt();
  } catch (err) {
    if (err instanceof AnswerParkedError) return answerParked(err);
    // A fault of our own (the store, the bucket, a bug). Never leave the item leased and silent.
    log.error({ event: 'item.error', err: (err as Error).message, lastAttempt }, 'item failed with an error');
    if (lastAttempt) {
      return fail(
        {
          code: 500,
          status: 'INTERNAL',
          message: `The worker failed on its last attempt: ${(err as Error).message}`,
        },
        'item.failed_last_attempt',
      );
    }
    await deps.lifecycle.release(lease).catch(() => undefined);
    throw err;
  }

  /**
   * The answer is paid for and parked, its outcome unwritten: the item is given back (if the store
   * lets us) for a later delivery to record it. The last attempt hands it to a new task for that.
   */
  async function answerParked(err: AnswerParkedError): Promise<WorkerReply> {
    await deps.lifecycle.release(lease).catch(() => undefined);
    if (!lastAttempt || !delivery.queueName) throw err;
    return handOver(
      clock() + 60_000,
      'warn',
      { reason: 'answer-parked', object: err.objectName },
      'last attempt could not write a paid answer; it is parked and a new task records it',
    );
  }

  /** Renews the lease if less than `needMs` is left; false (and the lease is gone) when it was lost. */
  async function leaseFor(needMs: number): Promise<boolean> {
    const kept = await keepLease(lease, needMs, deps);
    if (kept) lease = kept;
    else
      log.warn(
        { event: 'item.lease_lost' },
        'the lease was lost (another delivery, the reconciler or a cancel changed the item); stopping',
      );
    return kept !== undefined;
  }
  function leaseLost(): WorkerReply {
    return { status: 200, body: { outcome: 'lease-lost' } };
  }

  async function attempt(): Promise<WorkerReply> {
    if (parked) {
      // An earlier delivery paid for the answer: record it, never call Gemini again.
      return record(() => deps.lifecycle.recordParked(lease, parked), 'succeeded', 'item.parked_recorded');
    }
    if (item.plannedMs !== null && taskPlannedMs !== item.plannedMs) {
      // The item was planned again and has a newer task; this delivery is of an older one.
      await deps.lifecycle.release(lease);
      log.info({ event: 'item.superseded' }, 'the item has a newer task; this one ends');
      return { status: 200, body: { outcome: 'superseded' } };
    }
    const checked = await checkedOf(job, item, deps);
    const run = { job, item, lease: () => lease, finish, log };
    if (checked?.draft?.outcome) return recordParkedFailure(checked, run, deps);
    const quota = deps.quotas.models[job.model];
    if (!quota) {
      return fail(
        { code: 400, status: 'INVALID_ARGUMENT', message: `Unknown model ${job.model}.` },
        'item.failed',
      );
    }

    let request = item.request;
    if (item.media?.length) {
      try {
        request = await deps.media.attach(request, item.media, { logger: log, owner: job.owner });
      } catch (err) {
        const e = err as { permanent?: boolean; message?: string };
        if (e.permanent || lastAttempt) {
          return fail(
            { code: 400, status: 'INVALID_ARGUMENT', message: `media: ${e.message}` },
            'item.media_failed',
          );
        }
        // The fetcher has logged what went wrong (event media.failed), without a signed URL's query.
        log.warn({ event: 'item.media_retry' }, 'media fetch failed; retrying');
        return retryLater(500, undefined, 'media-retry');
      }
    }

    // The same owner's identical request answered before: recorded at no cost, its slot given back.
    const cache = checked ? undefined : deps.responseCache;
    const cached = await cache?.lookup(job, request, log);
    if (cached)
      return finishThen(cached, 'item.cache_hit', () => cache?.releaseSlot(job, item, plannedMs, log));

    if (plannedMs !== undefined && clock() - plannedMs > REPLAN_AFTER_MS && !lastAttempt) {
      // Far behind its plan (a retry, a paused queue, an overloaded worker): sending now could crowd
      // a minute the ledger has already filled.
      if (!(await leaseFor(beforeReplanMs(deps)))) return leaseLost();
      const slotMs = await within(
        (signal) =>
          deps.planner.replanLate(job, item, plannedMs, delivery.retryCount === 0, delivery.packed, signal),
        REPLAN_WAIT_MAX_MS,
        deps,
      );
      if (slotMs === timedOut) {
        // The ledger is too busy to answer: try again later rather than send into a crowded minute.
        log.warn(
          { event: 'item.replan_slow', waitedMs: REPLAN_WAIT_MAX_MS },
          'replanning took too long; retrying',
        );
        return retryLater(500, undefined, 'replan-slow');
      }
      if (slotMs !== undefined) {
        await deps.lifecycle.release(lease, slotMs);
        log.info(
          { event: 'item.replanned', lateMs: clock() - plannedMs, slotMs },
          'item far behind its plan; planned again',
        );
        return { status: 200, body: { outcome: 'replanned' } };
      }
    }

    const plan = planCall(job, clock(), deps);
    const ticket = await deps.lifecycle.budget.admit(job, budgetEstimate(job, item, plan, deps));
    if (ticket === 'stop') return stopForBudget();
    /** What the call cost: the answer's price, or nothing for a refusal. */
    let paidUsd = 0;
    try {
      if (!(await leaseFor(Math.max(beforeCallMs(deps), plan.leaseNeedMs)))) return leaseLost();
      const started = clock();
      let result: Awaited<ReturnType<WorkerDeps['gemini']['generate']>>;
      try {
        result = await deps.gemini.generate(job.model, requestFor(checked, request), {
          timeoutMs: plan.timeoutMs,
          ...(plan.tier ? { serviceTier: plan.tier } : {}),
        });
      } catch (err) {
        if (isFlexShed(plan, (err as GeminiCallError).httpStatus)) return flexShed(failedCall, deps);
        return geminiFailed(err as GeminiCallError, started, failedCall, deps);
      }
      geminiMs = clock() - started;
      const usage = usageFrom(result.usageMetadata);
      // From here on the answer is paid for: `complete` retries its write and never calls Gemini.
      const answer = {
        state: 'succeeded' as const,
        response: result.response,
        usage,
        ...priceAnswer(job, usage, result.servedTier, plan.tier, deps),
        // Evidence for the token plan (not with media, whose estimate is only a default, nor with a
        // schema, whose repair turn would count more than the estimate covers).
        ...(item.media?.length || checked ? {} : { estimatedTokens: item.estimatedTokens }),
      };
      paidUsd = answer.costUsd;
      // An answer with a schema is checked first, and may need its repair call (`check-answer.ts`).
      if (checked) return recordChecked(checked, answer, run, deps);
      return finishThen(answer, 'item.succeeded', () => cache?.remember(job, item, request, answer, log));
    } finally {
      deps.lifecycle.budget.done(ticket, paidUsd);
    }
  }

  /** The job's budget is reached: the item ends cancelled (reason `budget`), Gemini not called. */
  function stopForBudget(): Promise<WorkerReply> {
    const error = budgetError(job.maxCostUsd ?? 0);
    return record(() => deps.lifecycle.cancelItem(lease, error), 'cancelled', 'item.budget_stopped');
  }
}
