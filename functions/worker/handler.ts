import { costUsd, usageFrom } from '../core/cost.js';
import { type ItemError, isTerminalJob, itemIdForIndex } from '../core/jobs.js';
import { classifyFailure } from '../core/outcome.js';
import type { Quotas } from '../core/quotas.js';
import { lateSendNeedsSlot, PLAN_AHEAD_MS, REPLAN_AFTER_MS } from '../core/rate.js';
import type { GeminiCallError, GeminiClient } from '../platform/gemini.js';
import type { ItemOutcome, JobStore, JobView } from '../platform/job-store.js';
import type { Logger } from '../platform/logger.js';
import type { MediaFetcher } from '../platform/media.js';
import type { TaskPayload, TaskQueue } from '../platform/task-queue.js';

/** A Cloud Tasks delivery, parsed from its `X-CloudTasks-*` headers and JSON body by the adapter. */
export interface TaskDelivery {
  queueName: string;
  taskName: string;
  /** Attempts before this one (`X-CloudTasks-TaskRetryCount`). */
  retryCount: number;
  executionCount: number;
  payload: TaskPayload;
}

/** What the adapter answers Cloud Tasks: 2xx ends the task, anything else asks for another attempt. */
export interface WorkerReply {
  status: number;
  retryAfterSeconds?: number;
  body: { outcome: string; detail?: string };
}

export interface WorkerDeps {
  store: JobStore;
  gemini: GeminiClient;
  tasks: TaskQueue;
  media: MediaFetcher;
  quotas: Quotas;
  logger: Logger;
  /** Notifies a job's callback URL once it is terminal. */
  notify: (url: string, job: JobView) => Promise<void>;
  /** How long a delivery owns an item; a crashed delivery's item is free again after it. */
  leaseMs: number;
  geminiTimeoutMs: number;
  /** Enqueue pages run until this budget is spent, then continue in a fresh control task. */
  enqueueBudgetMs: number;
  now?: () => number;
}

/** Handles one task: an item to run, a page of a job's enqueuing, or a look at whether a job is done. */
export async function handleTask(delivery: TaskDelivery, deps: WorkerDeps): Promise<WorkerReply> {
  const { payload } = delivery;
  if (payload.kind === 'enqueue') return enqueueJob(payload.jobId, payload.from, deps);
  if (payload.kind === 'finish') return watchJob(payload.jobId, payload.round, deps);
  return runItem(delivery, payload.jobId, payload.itemId, payload.plannedMs, deps);
}

/** How often the finish watcher looks at a running job's counters. */
export const FINISH_WATCH_INTERVAL_MS = 2000;

/**
 * Items within this many of the end of the job check, when they finish, whether the job is done:
 * items are planned in input order, so the last to finish is almost always one of them and the job
 * ends the moment it does. Any other order is caught by the finish watcher within
 * {@link FINISH_WATCH_INTERVAL_MS}. Each check reads every counter shard, so few items do it: dozens
 * of checks at once stall the last items behind them.
 */
export function checksCompletion(index: number, total: number): boolean {
  return index >= total - Math.max(8, Math.ceil(total * 0.005));
}

/** The finish watcher: finishes the job once nothing is pending, else looks again shortly. */
async function watchJob(jobId: string, round: number, deps: WorkerDeps): Promise<WorkerReply> {
  const state = await finishIfDone(jobId, deps, deps.logger.child({ jobId }));
  if (state !== 'pending') return { status: 200, body: { outcome: state } };
  await deps.tasks.enqueueControl(
    { kind: 'finish', jobId, round: round + 1 },
    `${jobId}-finish-${round + 1}`,
    (deps.now ?? Date.now)() + FINISH_WATCH_INTERVAL_MS,
  );
  return { status: 200, body: { outcome: 'watching' } };
}

async function runItem(
  delivery: TaskDelivery,
  jobId: string,
  itemId: string,
  taskPlannedMs: number | undefined,
  deps: WorkerDeps,
): Promise<WorkerReply> {
  const log = deps.logger.child({ jobId, itemId, attempt: delivery.retryCount + 1 });
  const clock = deps.now ?? Date.now;
  const t0 = clock();
  let geminiMs = 0;
  const claim = await deps.store.claimItem(jobId, itemId, deps.leaseMs);
  switch (claim.outcome) {
    case 'missing':
      log.warn({ event: 'item.missing' }, 'task for an unknown item; dropping it');
      return { status: 200, body: { outcome: 'missing' } };
    case 'done':
      log.info({ event: 'item.duplicate', state: claim.state }, 'duplicate delivery of a finished item');
      // The delivery that wrote this item may have died before finishing the job: finish it here.
      await finishIfDone(jobId, deps, log);
      return { status: 200, body: { outcome: 'duplicate' } };
    case 'leased':
      log.info({ event: 'item.leased' }, 'another delivery holds this item');
      // Come back within 10 s at most, not at the end of the lease: the holder usually finishes (or
      // releases) long before its lease runs out, and this delivery then finds the item done.
      return {
        status: 503,
        retryAfterSeconds: Math.min(10, Math.ceil(claim.retryAfterMs / 1000)),
        body: { outcome: 'leased' },
      };
    case 'cancelled':
      log.info({ event: 'item.cancelled' }, 'job cancelled; item not run');
      await finishIfDone(jobId, deps, log);
      return { status: 200, body: { outcome: 'cancelled' } };
    case 'claimed':
      break;
  }
  const { item, job, leaseId } = claim;
  const quota = deps.quotas.models[job.model];
  const lastAttempt = delivery.retryCount + 1 >= deps.quotas.queue.maxAttempts;
  const plannedMs = item.plannedMs ?? taskPlannedMs;
  /** How far behind its plan this delivery started (for logs: a queue keeping up stays near 0). */
  const behindPlanMs = plannedMs === undefined ? undefined : t0 - plannedMs;

  if (item.plannedMs !== null && taskPlannedMs !== item.plannedMs) {
    // The item was planned again and has a newer task; this delivery is of an older one.
    await deps.store.releaseItem(jobId, itemId, leaseId);
    log.info({ event: 'item.superseded' }, 'the item has a newer task; this one ends');
    return { status: 200, body: { outcome: 'superseded' } };
  }

  const finish = async (outcome: ItemOutcome, event: string): Promise<WorkerReply> => {
    const written = await deps.store.completeItem(jobId, itemId, leaseId, outcome);
    if (written && checksCompletion(item.index, job.total)) await finishIfDone(jobId, deps, log);
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
    await deps.store.releaseItem(jobId, itemId, leaseId);
    return { status, ...(retryAfterSeconds ? { retryAfterSeconds } : {}), body: { outcome } };
  };

  if (!quota)
    return fail(
      { code: 400, status: 'INVALID_ARGUMENT', message: `Unknown model ${job.model}.` },
      'item.failed',
    );

  let request = item.request;
  if (item.media?.length) {
    try {
      request = await deps.media.attach(request, item.media);
    } catch (err) {
      const e = err as { permanent?: boolean; message?: string };
      if (e.permanent || lastAttempt) {
        return fail(
          { code: 400, status: 'INVALID_ARGUMENT', message: `media: ${e.message}` },
          'item.media_failed',
        );
      }
      log.warn({ event: 'item.media_retry', err: e.message }, 'media fetch failed; retrying');
      return retryLater(500, undefined, 'media-retry');
    }
  }

  if (plannedMs !== undefined && clock() - plannedMs > REPLAN_AFTER_MS && !lastAttempt) {
    // Far behind its plan (a retry, a paused queue, an overloaded worker): sending now could crowd a
    // minute the ledger has already filled. Where the ledger is light it goes ahead; otherwise it
    // takes a new slot, and runs now only if that slot is this second.
    const ledger = await deps.store.readLedger(job.model);
    if (lateSendNeedsSlot(ledger, clock(), item.estimatedTokens, quota, deps.quotas.headroom)) {
      const [slotMs] = await deps.store.reserveDispatches(
        job.model,
        [item.estimatedTokens],
        quota,
        deps.quotas.headroom,
        {
          jobId,
          // A first attempt never reached Gemini, so its old slot is free again.
          ...(delivery.retryCount === 0
            ? { release: { atMs: plannedMs, tokens: item.estimatedTokens } }
            : {}),
        },
      );
      if (slotMs !== undefined && slotMs > clock()) {
        await deps.tasks.enqueueItems(job.model, jobId, [
          { itemId, index: item.index, plannedMs: slotMs, replan: true },
        ]);
        await deps.store.releaseItem(jobId, itemId, leaseId, slotMs);
        log.info(
          { event: 'item.replanned', lateMs: clock() - plannedMs, slotMs },
          'item far behind its plan; planned again',
        );
        return { status: 200, body: { outcome: 'replanned' } };
      }
    }
  }

  const started = clock();
  try {
    const result = await deps.gemini.generate(job.model, request, { timeoutMs: deps.geminiTimeoutMs });
    geminiMs = clock() - started;
    const usage = usageFrom(result.usageMetadata);
    return finish(
      { state: 'succeeded', response: result.response, usage, costUsd: costUsd(usage, quota.price) },
      'item.succeeded',
    );
  } catch (err) {
    const call = err as GeminiCallError;
    const failure = classifyFailure(call.httpStatus, call.body, new Date((deps.now ?? Date.now)()));
    log.warn(
      {
        event: `gemini.${failure.kind}`,
        httpStatus: call.httpStatus,
        ms: (deps.now ?? Date.now)() - started,
      },
      failure.error.message,
    );
    switch (failure.kind) {
      case 'permanent':
        return fail(failure.error, 'item.failed');
      case 'quota-minute':
        if (lastAttempt) return fail(failure.error, 'item.failed_last_attempt');
        return retryLater(429, failure.retryAfterSeconds, 'quota-minute');
      case 'quota-day': {
        const untilMs = clock() + failure.retryAfterSeconds * 1000;
        const notice = `Paused: the daily request quota of ${job.model} is spent; resumes after ${new Date(untilMs).toISOString()}.`;
        await Promise.all([
          deps.store.setQuotaPause(job.model, untilMs, failure.error.message),
          deps.store.setNotice(jobId, notice),
          deps.tasks
            .pauseModel(job.model)
            .catch((e: Error) =>
              log.error({ event: 'queue.pause_failed', err: e.message }, 'could not pause the queue'),
            ),
        ]);
        log.warn({ event: 'quota.daily_exhausted', model: job.model, untilMs }, notice);
        if (lastAttempt) return fail(failure.error, 'item.failed_last_attempt');
        return retryLater(503, failure.retryAfterSeconds, 'quota-day');
      }
      case 'transient':
        if (lastAttempt) return fail(failure.error, 'item.failed_last_attempt');
        return retryLater(500, undefined, 'transient');
    }
  }
}

/**
 * Turns the job terminal when no item is pending; only one caller wins, and only it notifies.
 * Says whether the job was already terminal (or unknown), is now finished, or still has pending items.
 */
async function finishIfDone(
  jobId: string,
  deps: WorkerDeps,
  log: Logger,
): Promise<'terminal' | 'finished' | 'pending'> {
  const job = await deps.store.getJob(jobId);
  if (!job || isTerminalJob(job.status)) return 'terminal';
  if (await deps.store.hasPending(jobId)) return 'pending';
  const view = await deps.store.finishJob(jobId, 'succeeded');
  if (!view) return 'finished';
  log.info({ event: 'job.finished', counts: view.counts, costUsd: view.costUsd }, 'job finished');
  if (job.callbackUrl) {
    await deps
      .notify(job.callbackUrl, view)
      .catch((err: Error) =>
        log.error({ event: 'job.callback_failed', err: err.message }, 'callback failed'),
      );
  }
  return 'finished';
}

const PAGE = 500;

/**
 * Creates the item tasks of a job, page by page, from where the last run stopped (`enqueuedThrough`):
 * a crashed run is retried by Cloud Tasks and resumes; a long one hands over to a fresh control task.
 * Each page first reserves its dispatch slots on the model's ledger (requests and tokens), so each
 * task is scheduled when the queue can send it within RPM and TPM. Items are planned at most
 * {@link PLAN_AHEAD_MS} ahead; a control task comes back for the rest.
 */
async function enqueueJob(jobId: string, from: number, deps: WorkerDeps): Promise<WorkerReply> {
  const log = deps.logger.child({ jobId });
  const now = deps.now ?? Date.now;
  const started = now();
  const job = await deps.store.getJob(jobId);
  if (!job) return { status: 200, body: { outcome: 'missing' } };
  if (isTerminalJob(job.status)) return { status: 200, body: { outcome: 'terminal' } };
  const quota = deps.quotas.models[job.model];
  if (!quota) return { status: 200, body: { outcome: 'unknown-model' } };
  let through = Math.max(from, job.enqueuedThrough);
  while (through < job.total) {
    if (now() - started > deps.enqueueBudgetMs) {
      await deps.tasks.enqueueControl(
        { kind: 'enqueue', jobId, from: through },
        `${jobId}-enqueue-${through}`,
      );
      log.info({ event: 'enqueue.handover', through }, 'enqueue continues in a new task');
      return { status: 200, body: { outcome: 'handover', detail: String(through) } };
    }
    const page = await deps.store.listItems(jobId, {
      ...(through > 0 ? { afterId: itemIdForIndex(through - 1) } : {}),
      limit: PAGE,
    });
    if (page.length === 0) break;
    const pending = page.filter((i) => i.state === 'pending');
    const schedule = await deps.store.reserveDispatches(
      job.model,
      pending.map((i) => i.estimatedTokens),
      quota,
      deps.quotas.headroom,
      { jobId, untilMs: now() + PLAN_AHEAD_MS },
    );
    await deps.tasks.enqueueItems(
      job.model,
      jobId,
      schedule.map((plannedMs, n) => ({ itemId: pending[n]!.id, index: pending[n]!.index, plannedMs })),
    );
    const unplanned = pending[schedule.length];
    through = unplanned ? unplanned.index : page[page.length - 1]!.index + 1;
    await deps.store.setEnqueued(jobId, through);
    if (unplanned) {
      // The plan reaches PLAN_AHEAD_MS out: plan the rest when half of that is left.
      const atMs = Math.max(now() + 1000, (schedule.at(-1) ?? now() + PLAN_AHEAD_MS) - PLAN_AHEAD_MS / 2);
      await deps.tasks.enqueueControl(
        { kind: 'enqueue', jobId, from: through },
        `${jobId}-enqueue-${through}-at${Math.floor(atMs / 1000)}`,
        atMs,
      );
      log.info({ event: 'enqueue.paced', through, atMs }, 'planned as far ahead as allowed; the rest later');
      return { status: 200, body: { outcome: 'paced', detail: String(through) } };
    }
  }
  await deps.tasks.enqueueControl(
    { kind: 'finish', jobId, round: 0 },
    `${jobId}-finish-0`,
    now() + FINISH_WATCH_INTERVAL_MS,
  );
  log.info({ event: 'enqueue.done', through, ms: now() - started }, 'all item tasks created');
  return { status: 200, body: { outcome: 'enqueued', detail: String(through) } };
}
