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

/** Input tokens reserved per epoch second for one model: the last minute and the future. */
export interface TokenLedger {
  /** Epoch second → tokens planned to be sent in that second. */
  buckets: Record<string, number>;
}

/** Seconds a 60-second window can touch: any window (t − 60 s, t] lies within seconds s − 60 … s. */
const WINDOW_BUCKETS = 61;

/**
 * Plans when each item may be dispatched so that no 60-second window carries more than
 * `tpm × headroom` input tokens, across every job sharing the model's ledger. Items are placed first
 * come, first served, each in the earliest second at or after the last reservation whose trailing
 * window (the 61 one-second buckets any 60-second window ending in that second can touch) still has
 * room; a light set gets `now` for every item. An item larger than the whole budget is placed alone
 * in an empty window (Gemini will refuse it, and the worker records why).
 */
export function scheduleByTokens(
  ledger: TokenLedger,
  tokens: readonly number[],
  nowMs: number,
  quota: Pick<ModelQuota, 'tpm'>,
  headroom: number,
): { scheduleMs: number[]; ledger: TokenLedger } {
  const budget = Math.max(1, Math.floor(quota.tpm * headroom));
  const nowSec = Math.floor(nowMs / 1000);
  const buckets = new Map<number, number>();
  let cursor = nowSec;
  for (const [key, value] of Object.entries(ledger.buckets)) {
    const second = Number(key);
    if (second > nowSec - WINDOW_BUCKETS && value > 0) {
      buckets.set(second, value);
      cursor = Math.max(cursor, second);
    }
  }
  let sum = 0;
  for (let s = cursor - WINDOW_BUCKETS + 1; s <= cursor; s++) sum += buckets.get(s) ?? 0;
  const scheduleMs = tokens.map((w) => {
    while (w <= budget ? sum + w > budget : sum > 0) {
      sum -= buckets.get(cursor - WINDOW_BUCKETS + 1) ?? 0;
      cursor++;
      sum += buckets.get(cursor) ?? 0;
    }
    buckets.set(cursor, (buckets.get(cursor) ?? 0) + w);
    sum += w;
    return cursor === nowSec ? nowMs : cursor * 1000;
  });
  const kept = [...buckets].filter(([second]) => second > nowSec - WINDOW_BUCKETS);
  return { scheduleMs, ledger: { buckets: Object.fromEntries(kept.map(([k, v]) => [String(k), v])) } };
}
