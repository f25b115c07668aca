import type { TaskDelivery } from '../core/tasks.js';
import { isLastAttempt } from '../core/tasks.js';
import type { ClaimResult } from '../lifecycle/lifecycle.js';
import type { Logger } from '../platform/logger.js';
import type { WorkerDeps, WorkerReply } from './handler.js';

/**
 * On a last attempt (Cloud Tasks deletes the task after it), gives the item a new task on the queue
 * this delivery came from, due at `dueMs` and named by that second, so duplicates create it once.
 */
export function handOverFor(delivery: TaskDelivery, deps: WorkerDeps, log: Logger) {
  const { jobId, itemId } = delivery.payload as { jobId: string; itemId: string };
  return async (
    dueMs: number,
    level: 'warn' | 'error',
    event: Record<string, unknown>,
    message: string,
    /** The plan the new task carries (by default its due time); a later delivery than it plans again. */
    plannedMs = dueMs,
  ): Promise<WorkerReply> => {
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
}

/** The reply to a delivery that did not get the item: missing, done, cancelled, or held by another. */
export async function replyUnclaimed(
  claim: Exclude<ClaimResult, { outcome: 'claimed' }>,
  delivery: TaskDelivery,
  deps: WorkerDeps,
  log: Logger,
): Promise<WorkerReply> {
  const { jobId } = delivery.payload as { jobId: string };
  const clock = deps.now ?? Date.now;
  const lastAttempt = isLastAttempt(delivery.retryCount, deps.quotas.queue.maxAttempts);
  const handOver = handOverFor(delivery, deps, log);
  switch (claim.outcome) {
    case 'missing':
      log.warn({ event: 'item.missing' }, 'task for an unknown item; dropping it');
      return { status: 200, body: { outcome: 'missing' } };
    case 'done':
      log.info({ event: 'item.duplicate', state: claim.state }, 'duplicate delivery of a finished item');
      // The delivery that wrote this item may have died before finishing the job (or, for a
      // pipeline's unit, before moving its item on): do it here.
      await deps.lifecycle.pipeline.unitDone(
        jobId,
        Number((delivery.payload as { itemId: string }).itemId),
        deps.planner,
        log,
      );
      // (a multi-item task finishes the job once for all its items, `run-items.ts`).
      if (!delivery.inGroup) await deps.lifecycle.finishIfDone(jobId, log);
      return { status: 200, body: { outcome: 'duplicate' } };
    case 'cancelled':
      log.info({ event: 'item.cancelled' }, 'job cancelled; item not run');
      if (!delivery.inGroup) await deps.lifecycle.finishIfDone(jobId, log);
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
      // In a task of several items (a duplicate delivery of it, most often) the holder is left to
      // end the item: it records it or gives it a task, and if it dies its lease runs out and the
      // reconciler gives the item a new one. Asking the queue to deliver the whole task again would
      // take a whole task's worth of its rate, unplanned, to look at one item.
      if (delivery.inGroup) return { status: 200, body: { outcome: 'leased' } };
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
  }
}
