import type { ItemRecord, ItemState, JobRecord } from './jobs.js';

/** Whether a delivery may take an item: the first step of the item state machine that lifecycle/ owns. */

/** What a delivery may do with an item, decided from the item and its job as read. */
export type ClaimDecision =
  | { kind: 'missing' }
  /** The item has its outcome: a duplicate delivery. */
  | { kind: 'done'; state: ItemState }
  /** The job was cancelled: end the item as cancelled, do not run it. */
  | { kind: 'cancel' }
  /** Another delivery holds the item until `untilMs`. */
  | { kind: 'leased'; untilMs: number }
  /** Take the lease and run it. */
  | { kind: 'take' };

/**
 * The item state machine's first step (pending → leased → terminal): whether a delivery may take the
 * item. A lease that ran out (its delivery died) may be taken again.
 */
export function decideClaim(
  item: Pick<ItemRecord, 'state' | 'lease'> | undefined,
  job: Pick<JobRecord, 'status'> | undefined,
  nowMs: number,
): ClaimDecision {
  if (!item || !job) return { kind: 'missing' };
  if (item.state !== 'pending') return { kind: 'done', state: item.state };
  if (job.status === 'cancelled') return { kind: 'cancel' };
  if (item.lease && item.lease.untilMs > nowMs) return { kind: 'leased', untilMs: item.lease.untilMs };
  return { kind: 'take' };
}
