import type { ModelQuota } from './quotas.js';

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
 * so the rate is what is left of the budget after one burst.
 */
export function queueRateLimits(quota: Pick<ModelQuota, 'rpm'>, headroom: number): QueueRateLimits {
  const budget = Math.floor(quota.rpm * headroom);
  const burst = Math.max(1, Math.min(Math.ceil(budget / 60), MAX_DISPATCHES_PER_SECOND));
  const rate = Math.min(MAX_DISPATCHES_PER_SECOND, Math.max(budget - burst, 1) / 60);
  return {
    maxDispatchesPerSecond: Math.floor(rate * 1000) / 1000,
    maxBurstSize: burst,
    maxConcurrentDispatches: 5000,
  };
}

/** The token schedule of one model: the theoretical arrival time of GCRA, in epoch ms. */
export interface TokenLedger {
  tatMs: number;
}

/** Seconds of token budget a fresh job may spend at once before spacing starts. */
export const TOKEN_BURST_SECONDS = 6;

/**
 * Plans when each item may be dispatched so that no 60-second window carries more than
 * `tpm × headroom` input tokens (GCRA over tokens: rate r = budget/(60 + τ), tolerance τ, so any
 * minute holds at most r·(60 + τ) tokens). Returns the earliest dispatch time of each item and the
 * ledger to store. A set that is light on tokens gets `now` for every item.
 */
export function scheduleByTokens(
  ledger: TokenLedger,
  tokens: readonly number[],
  nowMs: number,
  quota: Pick<ModelQuota, 'tpm'>,
  headroom: number,
): { scheduleMs: number[]; ledger: TokenLedger } {
  const ratePerMs = (quota.tpm * headroom) / ((60 + TOKEN_BURST_SECONDS) * 1000);
  const toleranceMs = TOKEN_BURST_SECONDS * 1000;
  let tat = Math.max(ledger.tatMs, nowMs);
  const scheduleMs = tokens.map((w) => {
    const at = Math.max(nowMs, tat - toleranceMs);
    tat = Math.max(tat, at) + w / ratePerMs;
    return Math.round(at);
  });
  return { scheduleMs, ledger: { tatMs: tat } };
}
