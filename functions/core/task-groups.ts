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
 *
 * While a cold queue ramps up (`core/ramp.ts`), its tasks may carry more than k items: the plan gives
 * a task's items one instant, and they travel together up to the ramp's cap (`taskCutOf`).
 */

/** How a model's first tasks are cut: k items a second's task, up to `cap` for items planned for one instant. */
export interface TaskCut {
  itemsPerTask: number;
  cap: number;
}

/** One item's first task, as the planner hands it to the task queue. */
export interface PlannedItem {
  itemId: string;
  index?: number;
  plannedMs?: number;
}

/**
 * Cuts a page's plan into tasks: items planned in the same epoch second, at most `itemsPerTask` (k)
 * a task, and items planned for the same instant (a ramping queue's task, `core/ramp.ts`, or the
 * current second's sends) together up to `cap`. The items are taken in plan time then index order,
 * so a page cut again after a crash makes the same tasks. A task is due at its first item's
 * planned time, the earliest of its second's share (the plan spreads a second's items evenly, a
 * task's worth at a time); an item without a plan goes alone.
 */
export function groupTasks<T extends PlannedItem>(
  items: readonly T[],
  itemsPerTask: number,
  cap = itemsPerTask,
): T[][] {
  const k = Math.max(1, Math.floor(itemsPerTask));
  const most = Math.max(k, Math.floor(cap));
  const ordered = [...items].sort(
    (a, b) =>
      (a.plannedMs ?? Number.POSITIVE_INFINITY) - (b.plannedMs ?? Number.POSITIVE_INFINITY) ||
      (a.index ?? 0) - (b.index ?? 0),
  );
  const groups: T[][] = [];
  let current: T[] = [];
  const secondOf = (item: T) =>
    item.plannedMs === undefined ? undefined : Math.floor(item.plannedMs / 1000);
  for (const item of ordered) {
    const first = current[0];
    const joins =
      first !== undefined &&
      item.plannedMs !== undefined &&
      secondOf(item) === secondOf(first) &&
      (current.length < k || (item.plannedMs === first.plannedMs && current.length < most));
    if (first !== undefined && !joins) {
      groups.push(current);
      current = [];
    }
    current.push(item);
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
