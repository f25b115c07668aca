/** A job's totals (counts, usage, cost), summed from its counter shards or its items. */
import type { JobCounts, Usage } from '../api/jobs.js';
import { PRICE_TIERS, type PriceTier } from './cost.js';
import { type ImplicitCacheTotals, implicitCacheTotals } from './implicit-cache.js';

export function pendingOf(counts: Omit<JobCounts, 'pending'>): number {
  return Math.max(0, counts.total - counts.succeeded - counts.failed - counts.cancelled);
}

/** Items and cost of one pricing tier. */
export interface TierTotals {
  items: number;
  costUsd: number;
}

/** Counts, usage and cost of a job: from its counter shards while it runs, frozen once it ends. */
export interface Totals {
  counts: JobCounts;
  usage: Usage;
  costUsd: number;
  /** Answered items and their cost per tier that served them (tiers with items only). */
  tiers?: Partial<Record<PriceTier, TierTotals>>;
  /** What the answers would have cost all at standard, minus what they cost (negative for Priority). */
  savedUsd?: number;
  /** Items answered from the response cache, and what their answers cost the jobs that paid. */
  cache?: CacheTotals;
  /** What Gemini's implicit cache served of the job's answers (core/implicit-cache.ts). */
  implicitCache?: ImplicitCacheTotals;
}

/** A job's response-cache hits and the money they saved (`GET /jobs/{id}` `cache`). */
export interface CacheTotals {
  hits: number;
  savedUsd: number;
}

/**
 * What one outcome adds to the cache counters: a hit, and what the answer cost the job that paid for
 * it (`cacheHits`, `cacheSavedUsd`). Nothing for an answer Gemini gave this job.
 */
export function cacheCounterFields(outcome: { cached?: { savedUsd: number } }): Record<string, number> {
  if (!outcome.cached) return {};
  return { cacheHits: 1, cacheSavedUsd: outcome.cached.savedUsd };
}

/** One counter document's (or one item's) contribution: the fields below, tier fields included. */
export type TotalsPart = Partial<Record<string, number>>;

/** The counter fields of a tier: `items_<tier>` and `costUsd_<tier>` (flat names: no field paths). */
export const tierItemsField = (tier: PriceTier) => `items_${tier}`;
export const tierCostField = (tier: PriceTier) => `costUsd_${tier}`;

/**
 * What one answered item adds to the tier counters: one item and its cost under the tier that
 * served it, and what it would have cost at standard (for `savedUsd`). Nothing for an item without
 * a tier (unanswered, or recorded before tiers were).
 */
export function tierCounterFields(outcome: {
  tier?: PriceTier;
  costUsd?: number;
  standardCostUsd?: number;
}): Record<string, number> {
  if (!outcome.tier) return {};
  return {
    [tierItemsField(outcome.tier)]: 1,
    [tierCostField(outcome.tier)]: outcome.costUsd ?? 0,
    standardCostUsd: outcome.standardCostUsd ?? outcome.costUsd ?? 0,
  };
}

/**
 * A settled Batch API part's counter document: its counts as aggregated, and its answers under the
 * `batch` tier (every answer of a part was served by the Batch API).
 */
export function batchPartCounters(counts: TotalsPart): TotalsPart {
  return {
    ...counts,
    [tierItemsField('batch')]: counts.succeeded ?? 0,
    [tierCostField('batch')]: counts.costUsd ?? 0,
  };
}

const round9 = (usd: number) => Math.round(usd * 1e9) / 1e9;

/** Adds up per-shard (or per-item) contributions into totals. */
export function sumTotals(parts: Iterable<TotalsPart>, total: number): Totals {
  const sum = new Map<string, number>();
  for (const d of parts) {
    for (const [field, value] of Object.entries(d)) {
      if (typeof value === 'number') sum.set(field, (sum.get(field) ?? 0) + value);
    }
  }
  const at = (field: string) => sum.get(field) ?? 0;
  const succeeded = at('succeeded');
  const failed = at('failed');
  const cancelled = at('cancelled');
  const costUsd = round9(at('costUsd'));
  const tiers: Partial<Record<PriceTier, TierTotals>> = {};
  let tierCost = 0;
  for (const tier of PRICE_TIERS) {
    const items = at(tierItemsField(tier));
    if (items <= 0) continue;
    tiers[tier] = { items, costUsd: round9(at(tierCostField(tier))) };
    tierCost += at(tierCostField(tier));
  }
  const priced = Object.keys(tiers).length > 0;
  const hits = at('cacheHits');
  const implicit = implicitCacheTotals(at);
  return {
    counts: {
      total,
      succeeded,
      failed,
      cancelled,
      pending: pendingOf({ total, succeeded, failed, cancelled }),
    },
    usage: { promptTokens: at('promptTokens'), outputTokens: at('outputTokens') },
    costUsd,
    ...(priced ? { tiers, savedUsd: round9(at('standardCostUsd') - tierCost) } : {}),
    ...(hits > 0 ? { cache: { hits, savedUsd: round9(at('cacheSavedUsd')) } } : {}),
    ...(implicit ? { implicitCache: implicit } : {}),
  };
}
