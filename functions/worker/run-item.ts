import { budgetError } from '../core/budget.js';
import { usageFrom } from '../core/cost.js';
import type { ItemRecord } from '../core/jobs.js';
import { REPLAN_AFTER_MS } from '../core/rate.js';
import { isLastAttempt, type TaskDelivery } from '../core/tasks.js';
import { AnswerParkedError } from '../lifecycle/lifecycle.js';
import type { GeminiCallError } from '../platform/gemini/client.js';
import { flexShed, geminiFailed } from './call-failed.js';
import { type Checked, checkedOf, recordChecked, recordParkedFailure, requestFor } from './check-answer.js';
import type { WorkerDeps, WorkerReply } from './handler.js';
import { ItemDelivery, leaseLost } from './item-delivery.js';
import { beforeCallMs, beforeReplanMs, REPLAN_WAIT_MAX_MS, timedOut, within } from './keep-lease.js';
import { budgetEstimate, isFlexShed, planCall, priceAnswer } from './tier-call.js';
import { handOverFor, replyUnclaimed } from './unclaimed.js';

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
  const { jobId, itemId } = payload;
  const log = deps.logger.child({ jobId, itemId, attempt: delivery.retryCount + 1 });
  const clock = deps.now ?? Date.now;
  const lastAttempt = isLastAttempt(delivery.retryCount, deps.quotas.queue.maxAttempts);
  const startedMs = clock();
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

  const run = new ItemDelivery(delivery, deps, claim, log, lastAttempt, handOver, startedMs);
  try {
    // An earlier delivery paid for the answer: record it, never call Gemini again.
    if (claim.parked)
      return await run.record(
        () => deps.lifecycle.recordParked(run.lease(), claim.parked!),
        'succeeded',
        'item.parked_recorded',
      );
    return await attempt(run);
  } catch (err) {
    if (err instanceof AnswerParkedError) return answerParked(run, err);
    // A fault of our own (the store, the bucket, a bug). Never leave the item leased and silent.
    log.error({ event: 'item.error', err: (err as Error).message, lastAttempt }, 'item failed with an error');
    if (lastAttempt) {
      return run.fail(
        {
          code: 500,
          status: 'INTERNAL',
          message: `The worker failed on its last attempt: ${(err as Error).message}`,
        },
        'item.failed_last_attempt',
      );
    }
    await run.release().catch(() => undefined);
    throw err;
  }
}

/**
 * The answer is paid for and parked, its outcome unwritten: the item is given back (if the store
 * lets us) for a later delivery to record it. The last attempt hands it to a new task for that.
 */
async function answerParked(run: ItemDelivery, err: AnswerParkedError): Promise<WorkerReply> {
  await run.release().catch(() => undefined);
  if (!run.lastAttempt || !run.delivery.queueName) throw err;
  return run.handOver(
    run.now() + 60_000,
    'warn',
    { reason: 'answer-parked', object: err.objectName },
    'last attempt could not write a paid answer; it is parked and a new task records it',
  );
}

/** The steps of a claimed item up to its call: its plan, its schema, its media, the cache. */
async function attempt(run: ItemDelivery): Promise<WorkerReply> {
  const { deps, job, item, log } = run;
  if (item.plannedMs !== null && run.taskPlannedMs !== item.plannedMs) {
    // The item was planned again and has a newer task; this delivery is of an older one.
    await run.release();
    log.info({ event: 'item.superseded' }, 'the item has a newer task; this one ends');
    return { status: 200, body: { outcome: 'superseded' } };
  }
  const checked = await checkedOf(job, item, deps);
  if (checked?.draft?.outcome) return recordParkedFailure(checked, run, deps);
  if (!deps.quotas.models[job.model]) {
    return run.fail(
      { code: 400, status: 'INVALID_ARGUMENT', message: `Unknown model ${job.model}.` },
      'item.failed',
    );
  }

  const request = await withMedia(run);
  if ('reply' in request) return request.reply;

  // The same owner's identical request answered before: recorded at no cost, its slot given back.
  const cache = checked ? undefined : deps.responseCache;
  const cached = await cache?.lookup(job, request.request, log);
  if (cached)
    return run.finish(cached, 'item.cache_hit', () => cache?.releaseSlot(job, item, run.plannedMs, log));

  const replanned = await replanIfLate(run);
  if (replanned) return replanned;
  return call(run, request.request, checked);
}

/** The item's request with its media attached, or the reply of a delivery whose media failed. */
async function withMedia(
  run: ItemDelivery,
): Promise<{ request: ItemRecord['request'] } | { reply: WorkerReply }> {
  const { deps, job, item, log } = run;
  if (!item.media?.length) return { request: item.request };
  try {
    return { request: await deps.media.attach(item.request, item.media, { logger: log, owner: job.owner }) };
  } catch (err) {
    const e = err as { permanent?: boolean; message?: string };
    if (e.permanent || run.lastAttempt) {
      return {
        reply: await run.fail(
          { code: 400, status: 'INVALID_ARGUMENT', message: `media: ${e.message}` },
          'item.media_failed',
        ),
      };
    }
    // The fetcher has logged what went wrong (event media.failed), without a signed URL's query.
    log.warn({ event: 'item.media_retry' }, 'media fetch failed; retrying');
    return { reply: await run.retryLater(500, undefined, 'media-retry') };
  }
}

/**
 * Far behind its plan (a retry, a paused queue, an overloaded worker), sending now could crowd a
 * minute the ledger has already filled: the item is planned again (the reply), or goes now
 * (undefined) where the ledger has room.
 */
async function replanIfLate(run: ItemDelivery): Promise<WorkerReply | undefined> {
  const { deps, delivery, job, item, log, plannedMs } = run;
  if (plannedMs === undefined || run.now() - plannedMs <= REPLAN_AFTER_MS || run.lastAttempt)
    return undefined;
  if (!(await run.leaseFor(beforeReplanMs(deps)))) return leaseLost();
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
    return run.retryLater(500, undefined, 'replan-slow');
  }
  if (slotMs === undefined) return undefined;
  await run.release(slotMs);
  log.info(
    { event: 'item.replanned', lateMs: run.now() - plannedMs, slotMs },
    'item far behind its plan; planned again',
  );
  return { status: 200, body: { outcome: 'replanned' } };
}

/**
 * Calls Gemini within the job's budget and records the answer (checked against its schema first,
 * when it has one); a failed call goes to ./call-failed.ts.
 */
async function call(
  run: ItemDelivery,
  request: ItemRecord['request'],
  checked: Checked | undefined,
): Promise<WorkerReply> {
  const { deps, job, item, log } = run;
  const plan = planCall(job, run.now(), deps);
  const ticket = await deps.lifecycle.budget.admit(job, budgetEstimate(job, item, plan, deps));
  if (ticket === 'stop') {
    // The job's budget is reached: the item ends cancelled (reason `budget`), Gemini not called.
    const error = budgetError(job.maxCostUsd ?? 0);
    return run.record(
      () => deps.lifecycle.cancelItem(run.lease(), error),
      'cancelled',
      'item.budget_stopped',
    );
  }
  /** What the call cost: the answer's price, or nothing for a refusal. */
  let paidUsd = 0;
  try {
    if (!(await run.leaseFor(Math.max(beforeCallMs(deps), plan.leaseNeedMs)))) return leaseLost();
    const started = run.now();
    let result: Awaited<ReturnType<WorkerDeps['gemini']['generate']>>;
    try {
      result = await deps.gemini.generate(job.model, requestFor(checked, request), {
        timeoutMs: plan.timeoutMs,
        ...(plan.tier ? { serviceTier: plan.tier } : {}),
      });
    } catch (err) {
      if (isFlexShed(plan, (err as GeminiCallError).httpStatus)) return flexShed(run, deps);
      return geminiFailed(err as GeminiCallError, started, run, deps);
    }
    run.geminiMs = run.now() - started;
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
    const cache = deps.responseCache;
    return run.finish(answer, 'item.succeeded', () => cache?.remember(job, item, request, answer, log));
  } finally {
    deps.lifecycle.budget.done(ticket, paidUsd);
  }
}
