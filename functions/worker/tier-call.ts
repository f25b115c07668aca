import { itemCostEstimate } from '../core/budget.js';
import { type PriceTier, type TokenUsage, tierCost, tierShare } from '../core/cost.js';
import { callTierFor, flexRetryAtMs } from '../core/flex.js';
import type { ItemRecord, JobRecord } from '../core/jobs.js';
import type { CallTier } from '../platform/gemini/client.js';
import type { WorkerDeps } from './handler.js';
import { AFTER_ANSWER_MS } from './keep-lease.js';

/**
 * The tier side of one item's Gemini call (core/flex.ts has the rules): which tier to ask for and
 * how long to wait for it, what the answer costs at the tier that served it, and when a shed Flex
 * call is tried again.
 */

/** The tier to ask for (none: standard by default) and the client timeout that fits it. */
export interface CallPlan {
  tier: CallTier | undefined;
  timeoutMs: number;
  /** The lease a delivery needs left before the call: the timeout and the outcome's write. */
  leaseNeedMs: number;
}

/** A Flex job's item goes Flex while its deadline allows, with Flex's longer client timeout. */
export function planCall(job: JobRecord, nowMs: number, deps: WorkerDeps): CallPlan {
  const tier = callTierFor(job, nowMs, deps.quotas.serviceTiers.flex);
  const timeoutMs =
    tier === 'flex' ? Math.max(deps.geminiTimeoutMs, deps.geminiFlexTimeoutMs ?? 0) : deps.geminiTimeoutMs;
  return { tier, timeoutMs, leaseNeedMs: timeoutMs + AFTER_ANSWER_MS };
}

/**
 * What an answer costs, priced at the tier that served it (Gemini's `x-gemini-service-tier`, else
 * the tier asked for), and what it would have cost at standard.
 */
export function priceAnswer(
  job: JobRecord,
  usage: TokenUsage,
  served: CallTier | undefined,
  asked: CallPlan['tier'],
  deps: WorkerDeps,
): { costUsd: number; tier: PriceTier; standardCostUsd: number; implicitSavedUsd?: number } {
  const tier: PriceTier = served ?? asked ?? 'standard';
  const priced = tierCost(deps.quotas, job.model, usage, tier);
  if (!usage.cachedTokens) return { tier, ...priced };
  // What the cached input would have cost at the input price, less what it cost (core/implicit-cache.ts).
  const uncached = tierCost(deps.quotas, job.model, { ...usage, cachedTokens: 0 }, tier).costUsd;
  return {
    tier,
    ...priced,
    implicitSavedUsd: Math.max(0, Math.round((uncached - priced.costUsd) * 1e9) / 1e9),
  };
}

/** Whether a failed call was Flex shedding: a 503 to a Flex request (capacity full). */
export function isFlexShed(plan: CallPlan, httpStatus: number | undefined): boolean {
  return plan.tier === 'flex' && httpStatus === 503;
}

/** When a shed item is tried again (on Flex, or standard once its deadline is near). */
export function flexRetryDueMs(job: JobRecord, item: ItemRecord, nowMs: number, deps: WorkerDeps): number {
  return flexRetryAtMs(job, nowMs, item.attempts, deps.quotas.serviceTiers.flex);
}

/**
 * What the item is expected to cost at the tier asked for, for its job's budget (0 for a job
 * without one): core/budget.ts, floored by what the job's answers cost on average so far.
 */
export function budgetEstimate(job: JobRecord, item: ItemRecord, plan: CallPlan, deps: WorkerDeps): number {
  const quota = deps.quotas.models[job.model];
  if (job.maxCostUsd === undefined || !quota) return 0;
  const share = tierShare(deps.quotas, job.model, plan.tier ?? 'standard');
  return itemCostEstimate(item, quota.price, share, deps.lifecycle.budget.averageUsd(job.id));
}
