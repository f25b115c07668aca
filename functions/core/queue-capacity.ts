import { itemsPerTaskFor, queueRateLimits } from './queue-rate.js';
import type { ModelQuota } from './quotas.js';
import { type DispatchRamp, rampCapacity, rampItemsPerTask } from './ramp.js';

/**
 * How the dispatch planner (`core/rate.ts`) predicts a model's queue second by second: the tasks it
 * dispatches at its rate (its ramp's while a cold queue ramps, `core/ramp.ts`) and the items they carry.
 */

/**
 * Requests the queue can dispatch in epoch second `s` at `rate` a second: the integer steps of
 * `rate × s`, so consecutive seconds average exactly `rate`.
 */
export function requestsInSecond(s: number, rate: number): number {
  return Math.floor((s + 1) * rate) - Math.floor(s * rate);
}

/**
 * The items the model's queue dispatches per second, as `planDispatches` predicts it: with
 * several items a task, the queue's rate and burst count tasks, so a second takes whole tasks' worth
 * of items (`perTask` × the tasks it dispatches) and one job's seconds fill whole tasks. `startRamp`
 * begins a ramp at a queue's first planned send when it has none going. While it ramps, a second
 * has the ramp's tasks, each carrying up to `rampItemsPerTask` items, up to the steady rate's items
 * (and never fewer than the ramp's tasks of `perTask`).
 */
export function queueCapacity(
  /** The second the queue's current ramp began, as the ledger keeps it. */
  rampFromSec: number | undefined,
  requests: ReadonlyMap<number, number>,
  nowMs: number,
  quota: Pick<ModelQuota, 'rpm'>,
  headroom: number,
  itemsPerTask: number,
  ramp: DispatchRamp | false | undefined,
) {
  const nowSec = Math.floor(nowMs / 1000);
  const perTask = itemsPerTaskFor(quota, headroom, itemsPerTask);
  const { maxDispatchesPerSecond: rate, maxBurstSize } = queueRateLimits(quota, headroom, perTask);
  const packUpTo = rampItemsPerTask(ramp, perTask);
  // A queue idle for a minute has its whole burst: the current second can take that too, and no
  // minute goes over, as burst + 60 × rate is within the budget.
  let idle = true;
  for (let s = nowSec - 60; s <= nowSec && idle; s++) if (requests.has(s)) idle = false;
  // With a ramp: a queue that sent or will send something within idleSeconds goes on with its ramp;
  // one that did not starts a ramp at its first planned send.
  const active = ramp ? [...requests.keys()].some((second) => second > nowSec - ramp.idleSeconds) : false;
  let rampFrom = ramp && active ? rampFromSec : undefined;
  // A ramp this plan begins in the current second also accrues over what is left of it, at its
  // lowest share: one task at once, and those (counted from now, not from the second's end).
  const startsNow = ramp && !active;
  const firstTasks = ramp
    ? 1 + Math.floor(rate * ramp.startShare * (1 - (nowMs - nowSec * 1000) / 1000) + 1e-9)
    : 1;
  /** How far into its ramp the queue is in `second` (0 for any second before a ramp to begin); undefined when it does not ramp. */
  const rampSecond = (second: number): number | undefined => {
    if (!ramp) return undefined;
    if (rampFrom === undefined) return active ? undefined : 0;
    return second >= rampFrom && second - rampFrom <= ramp.seconds + 1 ? second - rampFrom : undefined;
  };
  /** Tasks the queue dispatches in `second` at its rate (its ramp's while it ramps). */
  const tasksIn = (second: number) => {
    const j = rampSecond(second);
    if (startsNow && second === nowSec && j === 0) return firstTasks;
    return ramp && j !== undefined ? rampCapacity(j, rate, ramp) : requestsInSecond(second, rate);
  };
  /** Requests second `second` can take at the queue's rate. */
  const steady = (second: number) => {
    const tasks = tasksIn(second);
    if (rampSecond(second) === undefined) return perTask * tasks;
    return Math.max(perTask * tasks, Math.min(perTask * requestsInSecond(second, rate), packUpTo * tasks));
  };
  /** The items one task of `second` stands for: what a task alone takes of the second's requests. */
  const taskWorth = (second: number) =>
    rampSecond(second) === undefined ? perTask : Math.ceil(steady(second) / Math.max(1, tasksIn(second)));
  /** `k` requests of a second rounded up to whole tasks where its tasks carry more than k items. */
  const wholeTasks = (second: number, k: number) => {
    if (rampSecond(second) === undefined) return k;
    const worth = taskWorth(second);
    return worth > perTask ? Math.ceil(k / worth) * worth : k;
  };
  const capacity = (second: number) =>
    steady(second) + (!ramp && idle && second === nowSec ? perTask * maxBurstSize : 0);
  /**
   * When the `k`-th request of a future second goes: the queue sends its tasks evenly across it, so
   * the k-th at k/cap of it; while it ramps, a task's items all go at their task's time.
   */
  const sendAt = (second: number, k: number) => {
    const items = Math.max(1, steady(second));
    if (rampSecond(second) === undefined) return second * 1000 + Math.floor((k * 1000) / items);
    const tasks = Math.max(1, tasksIn(second));
    const task = Math.floor(k / Math.max(1, Math.ceil(items / tasks)));
    return second * 1000 + Math.floor((task * 1000) / tasks);
  };
  const startRamp = (second: number) => {
    if (ramp && rampFrom === undefined && !active) rampFrom = second;
  };
  return { capacity, taskWorth, wholeTasks, sendAt, startRamp, rampFrom: () => rampFrom, perTask };
}
