import { z } from 'zod';

/**
 * The settings of the stand-in's cost side, apart from the modules that use them (spend.ts,
 * implicit-cache.ts: their module comments say what each models and which parts are hypotheses), so
 * config.ts can hold them without importing the token rule back.
 */

/** The project's spend limit per rolling window (spend.ts). */
export const spendSchema = z.object({
  /** USD per window; null: no spend limit (the default). */
  limitUsd: z.number().positive().nullable().default(null),
  /** The rolling window: 10 minutes upstream; tests shorten it. */
  windowMs: z.number().int().positive().default(600_000),
  /** model id → prices per million tokens (infra/quotas.json's); a model without one costs nothing. */
  prices: z
    .record(
      z.string(),
      z.object({
        inputPerMillion: z.number().nonnegative(),
        outputPerMillion: z.number().nonnegative(),
        cachedInputPerMillion: z.number().nonnegative().optional(),
      }),
    )
    .default({}),
  /** Shares of the standard price per tier (Flex 0.5, Priority 1.8 on the pricing page). */
  tierShares: z
    .object({ flex: z.number().positive().default(0.5), priority: z.number().positive().default(1.8) })
    .prefault({}),
  /** Hypothesis (undocumented): the QuotaFailure's quotaId and metric for the spend limit. */
  quotaId: z.string().default('GenerateContentPaidTierSpendPerProjectPer10Minutes'),
  quotaMetric: z.string().default('generativelanguage.googleapis.com/generate_content_paid_tier_spend'),
});

/** Implicit caching of repeated prefixes (implicit-cache.ts). */
export const implicitCacheSchema = z.object({
  enabled: z.boolean().default(false),
  /** model id (or `*`) → the fewest shared leading tokens that are served from the cache. */
  minTokens: z
    .record(z.string(), z.number().int().positive())
    .default({ 'gemini-2.5-flash': 1024, 'gemini-2.5-flash-lite': 2048, 'gemini-2.5-pro': 4096 }),
  /** How long a request's prefix stays warm after it was last sent (hypothesis). */
  ttlMs: z.number().int().positive().default(300_000),
  /** How many prefixes stay warm per model at once, the latest first (hypothesis). */
  entries: z.number().int().positive().default(1),
});
