/**
 * Budgets, pure: whether one more item of a job with `maxCostUsd` may be sent, and what it is
 * expected to cost.
 *
 * An item is sent only while what the job has spent, plus what is in flight (the estimates of items
 * sent and not yet counted), plus its own estimate stays within `maxCostUsd`; otherwise it ends
 * `cancelled` with reason `budget` and Gemini is not called. What the job has spent is read from its
 * counters, which an instance reads at most once per `BUDGET_READ_MS` per job (a read sums every
 * shard), so the view of a worker instance lags: see {@link BUDGET_READ_MS} for the overshoot bound.
 */
import { costUsd } from './cost.js';
import type { GenerateContentRequest, ItemError } from './jobs.js';
import type { ModelQuota } from './quotas.js';

/**
 * How often an instance reads a job's spent cost from its counters. What other instances send in
 * that time, and what is in flight everywhere, is not in the read: with the model's queue sending at
 * most `rpm` items a minute and a call taking at most `L` seconds, a job can end above its budget by
 * at most `rpm / 60 × (BUDGET_READ_MS / 1000 + L)` items' cost — within one instance it never does
 * (its own items in flight are reserved).
 */
export const BUDGET_READ_MS = 2_000;

/** The error of an item a budget stopped: cancelled, with `reason: "budget"`. */
export function budgetError(maxCostUsd: number): ItemError {
  return {
    code: 499,
    status: 'CANCELLED',
    message: `The job reached its budget (maxCostUsd ${maxCostUsd}): the item was not sent.`,
    reason: 'budget',
  };
}

/** The job's notice once its budget has stopped items. */
export function budgetNotice(maxCostUsd: number): string {
  return `Stopped at its budget: items not yet sent end cancelled (maxCostUsd ${maxCostUsd}).`;
}

/** What a job's budget looks like from one instance. */
export interface BudgetState {
  maxCostUsd: number;
  /** Spent as last read from the counters, plus what this instance's items cost since. */
  spentUsd: number;
  /** Estimates of this instance's items sent and not yet finished. */
  inFlightUsd: number;
}

/** True when an item expected to cost `itemUsd` fits: spent + in flight + it ≤ the budget. */
export function budgetAllows(state: BudgetState, itemUsd: number): boolean {
  return state.spentUsd + state.inFlightUsd + itemUsd <= state.maxCostUsd + 1e-12;
}

/**
 * What an item is expected to cost at `share` of the standard price: its input estimate, and as
 * output its `maxOutputTokens` when it sets one; never less than what the job's answers cost on
 * average so far (`averageUsd`), which is what counts the output of items without a cap.
 */
export function itemCostEstimate(
  item: { estimatedTokens: number; request: Pick<GenerateContentRequest, 'generationConfig'> },
  price: ModelQuota['price'],
  share: number,
  averageUsd = 0,
): number {
  const cap = item.request.generationConfig?.maxOutputTokens;
  const outputTokens = typeof cap === 'number' && cap > 0 ? cap : 0;
  return Math.max(costUsd({ promptTokens: item.estimatedTokens, outputTokens }, price, share), averageUsd);
}
