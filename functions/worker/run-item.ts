import { costUsd, usageFrom } from '../core/cost.js';
import type { ItemError, ItemOutcome } from '../core/jobs.js';
import { classifyFailure } from '../core/outcome.js';
import { REPLAN_AFTER_MS } from '../core/rate.js';
import { isLastAttempt, type TaskDelivery } from '../core/tasks.js';
import type { GeminiCallError } from '../platform/gemini.js';
import type { WorkerDeps, WorkerReply } from './handler.js';

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
 * Runs one item: claim it, call Gemini, record the outcome exactly once. Every path ends in a
 * state: on the queue's last attempt (after which Cloud Tasks deletes the task) a failure is
 * recorded, or, when another delivery holds the item, the item is handed to a new task.
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

  /**
   * On a last attempt (Cloud Tasks deletes the task after it), gives the item a new task on the queue
   * this delivery came from, due at `dueMs` and named by that second, so duplicates create it once.
   */
  const handOver = async (
    dueMs: number,
    level: 'warn' | 'error',
    event: Record<string, unknown>,
    message: string,
    /** The plan the new task carries (by default its due time); a later delivery than it plans again. */
    plannedMs = dueMs,
  ) => {
    await deps.tasks.handOver(delivery.queueName, jobId, {
      itemId,
      index: Number(itemId),
      plannedMs,
      handover: Math.floor(dueMs / 1000),
      ...(plannedMs !== dueMs ? { scheduleMs: dueMs } : {}),
    });
    log[level]({ event: 'item.handed_over', ...event }, message);
    return { status: 200, body: { outcome: 'handed-over' } };
  };

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
  switch (claim.outcome) {
    case 'missing':
      log.warn({ event: 'item.missing' }, 'task for an unknown item; dropping it');
      return { status: 200, body: { outcome: 'missing' } };
    case 'done':
      log.info({ event: 'item.duplicate', state: claim.state }, 'duplicate delivery of a finished item');
      // The delivery that wrote this item may have died before finishing the job: finish it here.
      await deps.lifecycle.finishIfDone(jobId, log);
      return { status: 200, body: { outcome: 'duplicate' } };
    case 'cancelled':
      log.info({ event: 'item.cancelled' }, 'job cancelled; item not run');
      await deps.lifecycle.finishIfDone(jobId, log);
      return { status: 200, body: { outcome: 'cancelled' } };
    case 'leased': {
      const waitMs = Math.max(0, claim.untilMs - clock());
      if (lastAttempt && delivery.queueName) {
        // This task is about to be deleted while another delivery holds the item. If that one
        // dies, nothing would come back: hand the item on, due when the lease ends.
        return handOver(
          claim.untilMs + 1000,
          'warn',
          { untilMs: claim.untilMs },
          'last attempt found the item leased; new task',
        );
      }
      log.info({ event: 'item.leased' }, 'another delivery holds this item');
      // Come back within 10 s at most, not at the end of the lease: the holder usually finishes (or
      // releases) long before its lease runs out, and this delivery then finds the item done. A 500,
      // not a 503: Cloud Tasks throttles the whole queue on 429 and 503 (system throttling), and a
      // duplicate delivery is no reason to slow every other item.
      return {
        status: 500,
        retryAfterSeconds: Math.max(1, Math.min(10, Math.ceil(waitMs / 1000))),
        body: { outcome: 'leased' },
      };
    }
    case 'claimed':
      break;
  }

  const { item, job, lease } = claim;
  const finish = async (outcome: ItemOutcome, event: string): Promise<WorkerReply> => {
    const written = await deps.lifecycle.complete(lease, outcome);
    if (written && checksCompletion(item.index, job.total)) await deps.lifecycle.finishIfDone(jobId, log);
    const totalMs = clock() - t0;
    // overheadMs is what the system adds to Gemini's own time: the benchmark's per-item overhead.
    log.info(
      {
        event,
        written,
        state: outcome.state,
        totalMs,
        geminiMs,
        overheadMs: totalMs - geminiMs,
        behindPlanMs,
      },
      `item ${outcome.state}`,
    );
    return { status: 200, body: { outcome: outcome.state } };
  };
  const fail = (error: ItemError, event: string) => finish({ state: 'failed', error }, event);
  const retryLater = async (status: number, retryAfterSeconds: number | undefined, outcome: string) => {
    await deps.lifecycle.release(lease);
    return { status, ...(retryAfterSeconds ? { retryAfterSeconds } : {}), body: { outcome } };
  };

  const plannedMs = item.plannedMs ?? taskPlannedMs;
  /** How far behind its plan this delivery started (for logs: a queue keeping up stays near 0). */
  const behindPlanMs = plannedMs === undefined ? undefined : t0 - plannedMs;

  try {
    return await attempt();
  } catch (err) {
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

  async function attempt(): Promise<WorkerReply> {
    if (item.plannedMs !== null && taskPlannedMs !== item.plannedMs) {
      // The item was planned again and has a newer task; this delivery is of an older one.
      await deps.lifecycle.release(lease);
      log.info({ event: 'item.superseded' }, 'the item has a newer task; this one ends');
      return { status: 200, body: { outcome: 'superseded' } };
    }
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
        request = await deps.media.attach(request, item.media, { logger: log });
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

    if (plannedMs !== undefined && clock() - plannedMs > REPLAN_AFTER_MS && !lastAttempt) {
      // Far behind its plan (a retry, a paused queue, an overloaded worker): sending now could crowd
      // a minute the ledger has already filled.
      const slotMs = await deps.planner.replanLate(job, item, plannedMs, delivery.retryCount === 0);
      if (slotMs !== undefined) {
        await deps.lifecycle.release(lease, slotMs);
        log.info(
          { event: 'item.replanned', lateMs: clock() - plannedMs, slotMs },
          'item far behind its plan; planned again',
        );
        return { status: 200, body: { outcome: 'replanned' } };
      }
    }

    const started = clock();
    let result: Awaited<ReturnType<WorkerDeps['gemini']['generate']>>;
    try {
      result = await deps.gemini.generate(job.model, request, { timeoutMs: deps.geminiTimeoutMs });
    } catch (err) {
      return geminiFailed(err as GeminiCallError, started);
    }
    geminiMs = clock() - started;
    const usage = usageFrom(result.usageMetadata);
    // From here on the answer is paid for: `complete` retries its write and never calls Gemini.
    return finish(
      { state: 'succeeded', response: result.response, usage, costUsd: costUsd(usage, quota.price) },
      'item.succeeded',
    );
  }

  async function geminiFailed(call: GeminiCallError, started: number): Promise<WorkerReply> {
    const failure = classifyFailure(call.httpStatus, call.body, new Date(clock()));
    log.warn(
      { event: `gemini.${failure.kind}`, httpStatus: call.httpStatus, ms: clock() - started },
      failure.error.message,
    );
    switch (failure.kind) {
      case 'permanent':
        return fail(failure.error, 'item.failed');
      case 'quota-minute': {
        // Its leases count its attempts across the tasks it was handed to.
        if (lastAttempt || item.attempts >= deps.quotas.queue.maxAttempts)
          return fail(failure.error, 'item.failed_last_attempt');
        if (!delivery.queueName) return retryLater(429, failure.retryAfterSeconds, 'quota-minute');
        // Answering 429 would have Cloud Tasks throttle the whole queue (system throttling), every
        // item slowed for one refusal (other traffic on the project, or capacity): this item alone
        // waits Gemini's retryDelay, in a new task.
        // The new task keeps the item's plan and comes after the delay: arriving later than its plan,
        // it takes a fresh slot on the ledger (its first never reached Gemini) rather than go
        // unplanned. A send within the slack of its plan needs none.
        const dueMs = clock() + failure.retryAfterSeconds * 1000;
        return handOver(
          dueMs,
          'warn',
          { reason: 'quota-minute' },
          'Gemini refused for the minute; item waits in a new task',
          plannedMs ?? dueMs,
        ).then(async (reply) => {
          await deps.lifecycle.release(lease);
          return reply;
        });
      }
      case 'quota-day':
        await deps.planner.pauseForDailyQuota(
          job,
          clock() + failure.retryAfterSeconds * 1000,
          failure.error.message,
          log,
        );
        if (lastAttempt) return fail(failure.error, 'item.failed_last_attempt');
        return retryLater(503, failure.retryAfterSeconds, 'quota-day');
      case 'transient':
        if (lastAttempt) return fail(failure.error, 'item.failed_last_attempt');
        return retryLater(500, undefined, 'transient');
    }
  }
}
