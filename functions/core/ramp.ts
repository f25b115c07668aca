import { MAX_ITEMS_PER_TASK } from './quotas.js';

/**
 * How a model's queue ramps up after idling: it dispatches at `startShare` of its rate, rising
 * linearly to the whole rate over `seconds`, once it has dispatched nothing for `idleSeconds`. Cloud
 * Tasks documents that queues smooth sudden spikes ("adaptive layers ... this adaptation, however,
 * takes time", Manage scaling risks) but not by how much: this is a hypothesis, a setting
 * (`queueRamp` in infra/quotas.json). The local cloud's strict profile ramps from 20% over 30 s
 * after 60 s idle. With a ramp the plan follows it, so a cold queue's items are not planned sooner
 * than it will send them (and none falls behind and is planned again); without, a queue idle for a
 * minute is planned with its whole burst at once.
 *
 * While it ramps, a task may carry several items (`itemsPerTask`, by default as many as make up the
 * ramp's share: ⌈k / startShare⌉): the queue's tasks rise with the ramp, the items they carry keep
 * the model's steady rate, so a cold queue costs no time. Gemini's limits count requests, not tasks,
 * and the plan still puts no more requests in a second than the steady rate.
 */
export interface DispatchRamp {
  startShare: number;
  seconds: number;
  idleSeconds: number;
  /** Items a task carries at most while the queue ramps; 1 (or the queue's k) plans at the ramp's rate. */
  itemsPerTask?: number;
}

/**
 * Items a task of a queue whose tasks carry `perTask` items may carry while it ramps (at most
 * {@link MAX_ITEMS_PER_TASK}); `perTask` for a queue the deployment plans no ramp for.
 */
export function rampItemsPerTask(ramp: DispatchRamp | false | undefined, perTask: number): number {
  if (!ramp) return perTask;
  const packed = ramp.itemsPerTask ?? Math.ceil(perTask / ramp.startShare - 1e-9);
  return Math.max(perTask, Math.min(Math.floor(packed), MAX_ITEMS_PER_TASK));
}

/**
 * Requests a queue ramping since the start of second 0 can send in its second `k`: one at once,
 * then what its rising rate accrues, counted from the end of second 0 (the ramp starts with the
 * first dispatch, somewhat after the plan's second begins: the plan errs late, never early).
 */
export function rampCapacity(k: number, rate: number, ramp: DispatchRamp): number {
  const accrued = (t: number) => {
    if (t <= 0) return 0;
    const rising = Math.min(t, ramp.seconds);
    return (
      rate *
      (ramp.startShare * rising +
        ((1 - ramp.startShare) * rising * rising) / (2 * Math.max(1, ramp.seconds)) +
        Math.max(0, t - ramp.seconds))
    );
  };
  const upTo = (j: number) => (j < 0 ? 0 : 1 + Math.floor(accrued(j) + 1e-9));
  return upTo(k) - upTo(k - 1);
}
