/**
 * Several items a task: the items of one job that the ledger planned for the same second travel in
 * one Cloud Tasks task, up to `itemsPerTask` (k) of them. The queue then dispatches tasks at
 * items/s ÷ k (`queueRateLimits`), so its 500 dispatches a second carry 500 × k items, and Cloud
 * Tasks operations and function invocations per item fall k-fold. Each item is still claimed,
 * leased, recorded and counted on its own (`worker/run-items.ts`).
 *
 * Only an item's first task is grouped: a replanned, handed-over, retasked or repair task carries
 * one item. A group is named as its first item's own task (`itemTaskName`), so a cancel that deletes
 * its items' tasks deletes the group with its first item, and creating it again is deduplicated.
 * A group re-created after a crash mid-enqueue may be cut differently from the one that exists
 * (the plan moved on): an item covered by neither then waits for the reconciler's due-time sweep,
 * like any item whose task is lost.
 */

/** One item's first task, as the planner hands it to the task queue. */
export interface PlannedItem {
  itemId: string;
  plannedMs?: number;
}

/**
 * Cuts a page's plan (in plan order) into tasks: consecutive items planned in the same epoch second,
 * at most `itemsPerTask` a task. A task is due at its first item's planned time, the earliest of its
 * second's share (the plan spreads a second's items evenly, a task's worth at a time); an item
 * without a plan goes alone.
 */
export function groupBySecond<T extends PlannedItem>(items: readonly T[], itemsPerTask: number): T[][] {
  const k = Math.max(1, Math.floor(itemsPerTask));
  const groups: T[][] = [];
  let current: T[] = [];
  let second: number | undefined;
  for (const item of items) {
    const at = item.plannedMs === undefined ? undefined : Math.floor(item.plannedMs / 1000);
    if (current.length > 0 && (current.length >= k || at === undefined || at !== second)) {
      groups.push(current);
      current = [];
    }
    current.push(item);
    second = at;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/**
 * How many items the planner takes in one page: the largest multiple of k within `pageSize`, so a
 * page's seconds end on whole tasks and the next page's groups start aligned with the queue's.
 */
export function pageSizeFor(pageSize: number, itemsPerTask: number): number {
  const k = Math.max(1, Math.floor(itemsPerTask));
  return Math.max(k, Math.floor(pageSize / k) * k);
}
