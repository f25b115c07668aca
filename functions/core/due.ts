import type { Quotas } from './quotas.js';

/**
 * When a pending item is due (`ItemRecord.dueByMs`): a task planned at `plannedMs` is either
 * delivered to the worker or deleted by Cloud Tasks (out of attempts, no dead-letter) within its
 * first dispatch deadline plus the backoffs of every retry the queue allows. Past that, with no live
 * lease, no task will ever deliver the item: the reconciler gives it a new one. Pure, no I/O.
 *
 * An attempt that reaches the worker and fails releases the item, which moves its due time on from
 * then; attempts that fail before the worker (Cloud Run's 429 at max instances, a 401/403 after an
 * IAM slip, an outage) fail fast, so the backoffs are what they cost.
 */

/** Cloud Tasks' wait before retry number `retryIndex` (0: the first retry), as RetryConfig documents. */
export function retryBackoffMs(queue: Quotas['queue'], retryIndex: number): number {
  const min = queue.minBackoffSeconds * 1000;
  const doublings = Math.max(0, queue.maxDoublings);
  const delay =
    retryIndex <= doublings ? min * 2 ** retryIndex : min * 2 ** doublings * (1 + retryIndex - doublings);
  return Math.min(delay, queue.maxBackoffSeconds * 1000);
}

/** The backoffs of every retry a task of the queue gets: its whole retry budget. */
export function retryBudgetMs(queue: Quotas['queue']): number {
  let total = 0;
  for (let i = 0; i < queue.maxAttempts - 1; i++) total += retryBackoffMs(queue, i);
  return total;
}

/** How long after its planned send an item's task may still deliver it. */
export function dueWindowMs(queue: Quotas['queue'], dispatchDeadlineSeconds: number): number {
  return dispatchDeadlineSeconds * 1000 + retryBudgetMs(queue);
}
