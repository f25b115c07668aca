import type { ModelQuota, Quotas } from './quotas.js';
import { rampItemsPerTask } from './ramp.js';
import type { TaskCut } from './task-groups.js';

/**
 * A model's Cloud Tasks queue, sized from its quota: the dispatch rate and burst that keep every
 * minute within `rpm × headroom`, and how many items a task carries. The dispatch planner
 * (`core/rate.ts`) predicts the queue by these same numbers; Terraform and `doctor` set and check them.
 */

/** Cloud Tasks' ceiling on one queue's dispatch rate. */
export const MAX_DISPATCHES_PER_SECOND = 500;

export interface QueueRateLimits {
  maxDispatchesPerSecond: number;
  maxBurstSize: number;
  maxConcurrentDispatches: number;
}

/**
 * Sizes a model's queue so that no 60-second window carries more than `rpm × headroom` dispatches,
 * the first minute included: a token bucket lets through at most `burst + 60 × rate` in any minute,
 * so the rate is what is left of the budget after one burst. With `itemsPerTask` = k, rate and burst
 * count tasks of at most k items: at most k × (burst + 60 × rate) items a minute, the same budget,
 * and Cloud Tasks' 500 dispatches a second become 500 × k items (one model past 30,000 RPM).
 */
export function queueRateLimits(
  quota: Pick<ModelQuota, 'rpm'>,
  headroom: number,
  /** Items a task carries at most (`core/task-groups.ts`): the rate and burst count tasks of that many. */
  itemsPerTask = 1,
): QueueRateLimits {
  const k = itemsPerTaskFor(quota, headroom, itemsPerTask);
  const budget = Math.floor(quota.rpm * headroom);
  const burst = Math.max(1, Math.min(Math.ceil(Math.ceil(budget / 60) / k), MAX_DISPATCHES_PER_SECOND));
  const rate = Math.min(MAX_DISPATCHES_PER_SECOND, Math.max(budget - burst * k, 1) / (60 * k));
  return {
    maxDispatchesPerSecond: Math.floor(rate * 1000) / 1000,
    maxBurstSize: burst,
    maxConcurrentDispatches: 5000,
  };
}

/**
 * The items a task of this model carries at most: `itemsPerTask`, but never more than one second of
 * the model's budget (a task is one second's items), so a small quota keeps one item a task.
 */
export function itemsPerTaskFor(quota: Pick<ModelQuota, 'rpm'>, headroom: number, itemsPerTask = 1): number {
  const perSecond = Math.max(1, Math.ceil(Math.floor(quota.rpm * headroom) / 60));
  return Math.max(1, Math.min(Math.floor(itemsPerTask), perSecond));
}

/** The items a task of `model`'s queue carries at most (`itemsPerTaskFor` under the deployment's quotas); 1 for a model it does not know. */
export function itemsPerTaskOf(
  quotas: Pick<Quotas, 'models' | 'headroom' | 'itemsPerTask'>,
  model: string,
): number {
  const quota = quotas.models[model];
  return quota ? itemsPerTaskFor(quota, quotas.headroom, quotas.itemsPerTask) : 1;
}

/**
 * How `model`'s first tasks are cut (`core/task-groups.ts`): its k items a task, and up to more while
 * its queue ramps (`rampItemsPerTask`, when the deployment plans for a ramp).
 */
export function taskCutOf(
  quotas: Pick<Quotas, 'models' | 'headroom' | 'itemsPerTask' | 'queueRamp'>,
  model: string,
): TaskCut {
  const itemsPerTask = itemsPerTaskOf(quotas, model);
  return { itemsPerTask, cap: rampItemsPerTask(quotas.queueRamp, itemsPerTask) };
}
