import type { ItemError, ItemRecord, JobRecord } from '../core/jobs.js';
import { classifyFailure } from '../core/outcome.js';
import { itemsPerTaskOf } from '../core/queue-rate.js';
import type { TaskDelivery } from '../core/tasks.js';
import type { GeminiCallError } from '../platform/gemini/client.js';
import type { Logger } from '../platform/logger.js';
import type { WorkerDeps, WorkerReply } from './handler.js';
import { REPLAN_WAIT_MAX_MS, timedOut, within } from './keep-lease.js';
import { flexRetryDueMs } from './tier-call.js';
import type { handOverFor } from './unclaimed.js';

/**
 * A delivery's step when its call to Gemini did not answer (part of `runItem`, ./run-item.ts): each
 * kind of failure ends in a state, or in a retry decided on purpose.
 */

/** What the step needs of the delivery running the item (its methods are called on it). */
export interface FailedCall {
  delivery: TaskDelivery;
  job: JobRecord;
  item: ItemRecord;
  log: Logger;
  lastAttempt: boolean;
  /** The item's plan, which a task it is handed to keeps. */
  plannedMs: number | undefined;
  fail: (error: ItemError, event: string) => Promise<WorkerReply>;
  retryLater: (
    status: number,
    retryAfterSeconds: number | undefined,
    outcome: string,
  ) => Promise<WorkerReply>;
  handOver: ReturnType<typeof handOverFor>;
  /** Gives the item back (with a new plan when it has a new task): the lease as the delivery holds it by then. */
  release: (plannedMs?: number) => Promise<void>;
}

/**
 * Flex capacity was full (503): the item waits in a new task, on Flex again after a backoff, or
 * standard once its deadline is near (core/flex.ts). It keeps its plan, so the later delivery
 * takes a fresh slot on the ledger (the shed call counted against the limits).
 */
export async function flexShed(run: FailedCall, deps: WorkerDeps): Promise<WorkerReply> {
  const { delivery, job, item, plannedMs, handOver } = run;
  const clock = deps.now ?? Date.now;
  const dueMs = flexRetryDueMs(job, item, clock(), deps);
  if (!delivery.queueName) return run.retryLater(503, Math.ceil((dueMs - clock()) / 1000), 'flex-shed');
  const reply = await handOver(
    dueMs,
    'warn',
    { reason: 'flex-shed' },
    'Flex capacity is full; the item tries again later',
    plannedMs ?? dueMs,
  );
  await run.release();
  return reply;
}

/**
 * Gemini refused or failed the call: a permanent refusal fails the item; a minute's 429 lowers the
 * model's rate and hands the item to a new task after Gemini's retryDelay; a spent day pauses the
 * model; a transient fault is retried by the queue, or where tasks carry several items in a task of
 * its own at a planned slot. The last attempt records the failure.
 */
export async function geminiFailed(
  call: GeminiCallError,
  started: number,
  run: FailedCall,
  deps: WorkerDeps,
): Promise<WorkerReply> {
  const { delivery, job, item, log, lastAttempt, plannedMs, handOver } = run;
  const clock = deps.now ?? Date.now;
  const failure = classifyFailure(call.httpStatus, call.body, new Date(clock()));
  // A 429 says which limit it hit (QuotaFailure quotaId) and for how long (RetryInfo): logged.
  const hit = 'hit' in failure ? { quotaId: failure.hit.quotaId, limit: failure.hit.limit } : {};
  log.warn(
    { event: `gemini.${failure.kind}`, httpStatus: call.httpStatus, ms: clock() - started, ...hit },
    failure.error.message,
  );
  if ('hit' in failure) await deps.lifecycle.countQuota429(job.id, job.model, failure.hit.quotaId, log);
  switch (failure.kind) {
    case 'permanent':
      return run.fail(failure.error, 'item.failed');
    case 'quota-minute': {
      // Gemini counted more of the model's tokens than the plan did: the model plans lower a while.
      if (failure.hit.limit === 'tokens-per-minute') await deps.planner.lowerTokenRate(job.model, log);
      // A model whose rate adapts (Vertex, `rpm: "auto"`) slows down on any other minute's 429.
      else await deps.planner.lowerRequestRate(job.model, log);
      // Its leases count its attempts across the tasks it was handed to.
      if (lastAttempt || item.attempts >= deps.quotas.queue.maxAttempts)
        return run.fail(failure.error, 'item.failed_last_attempt');
      if (!delivery.queueName) return run.retryLater(429, failure.retryAfterSeconds, 'quota-minute');
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
        await run.release();
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
      if (lastAttempt) return run.fail(failure.error, 'item.failed_last_attempt');
      return run.retryLater(503, failure.retryAfterSeconds, 'quota-day');
    case 'transient':
      if (lastAttempt) return run.fail(failure.error, 'item.failed_last_attempt');
      // Where tasks carry several items (core/task-groups.ts), or this one does (a ramping queue's),
      // the item's retry is planned.
      if (delivery.queueName && (delivery.inGroup || itemsPerTaskOf(deps.quotas, job.model) > 1))
        return retryAlone(failure.error, run, deps);
      return run.retryLater(500, undefined, 'transient');
  }
}

/**
 * A transient fault where tasks carry several items: the item's retry is planned, a task of its own
 * at a slot on the ledger (`planner.planRetry`), and this delivery ends. Answering 500 would have the
 * queue deliver the whole task again, unplanned: every retry takes a whole task's worth of the
 * queue's rate ahead of the planned tasks, which then run later and later behind their plan (15% of
 * calls failing put the last items 50 s behind, past their due time). Its leases count the item's
 * attempts across its tasks, as a last attempt would; a ledger too busy to answer leaves the
 * queue's retry.
 */
async function retryAlone(error: ItemError, run: FailedCall, deps: WorkerDeps): Promise<WorkerReply> {
  const { job, item, log } = run;
  if (item.attempts >= deps.quotas.queue.maxAttempts) return run.fail(error, 'item.failed_last_attempt');
  const slotMs = await within(
    (signal) => deps.planner.planRetry(job, item, signal),
    REPLAN_WAIT_MAX_MS,
    deps,
  );
  // No slot (the job is over: its cancel or budget ends the item), or no answer in time.
  if (slotMs === timedOut || slotMs === undefined) return run.retryLater(500, undefined, 'transient');
  await run.release(slotMs);
  log.info(
    { event: 'item.retry_planned', slotMs },
    'transient fault; the item is retried in a task of its own',
  );
  return { status: 200, body: { outcome: 'retry-planned' } };
}
