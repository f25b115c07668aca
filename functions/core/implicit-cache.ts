/**
 * The job's implicit-cache totals, pure: each answer Gemini gave adds to its counter shard whether
 * it read cached input, how many tokens, and what that saved (`priceAnswer`'s `implicitSavedUsd`),
 * so the view can say the hit rate and the money (`GET /jobs/{id}` `implicitCache`).
 */

/** A job's implicit-cache totals (see `functions/api/implicit-cache.ts`). */
export interface ImplicitCacheTotals {
  hitRate: number;
  cachedTokens: number;
  savedUsd: number;
}

/** Counter fields (flat names, no field paths). */
export const IC_ANSWERS = 'icAnswers';
export const IC_HITS = 'icHits';
export const IC_TOKENS = 'icCachedTokens';
export const IC_SAVED = 'icSavedUsd';

/**
 * What one outcome adds: an answer Gemini gave (succeeded, with usage, not from the response
 * cache), a hit when it read cached input, its cached tokens and saving. Nothing otherwise.
 */
export function implicitCacheCounterFields(outcome: {
  state: string;
  usage?: object;
  cached?: unknown;
  implicitSavedUsd?: number;
}): Record<string, number> {
  if (outcome.state !== 'succeeded' || !outcome.usage || outcome.cached) return {};
  const tokens = (outcome.usage as { cachedTokens?: number }).cachedTokens ?? 0;
  return {
    [IC_ANSWERS]: 1,
    ...(tokens > 0 ? { [IC_HITS]: 1, [IC_TOKENS]: tokens, [IC_SAVED]: outcome.implicitSavedUsd ?? 0 } : {}),
  };
}

/** The totals from summed counter fields (`at(field)`), or undefined before any hit. */
export function implicitCacheTotals(at: (field: string) => number): ImplicitCacheTotals | undefined {
  const hits = at(IC_HITS);
  const answers = at(IC_ANSWERS);
  if (hits <= 0 || answers <= 0) return undefined;
  return {
    hitRate: Math.round((hits / answers) * 1e4) / 1e4,
    cachedTokens: at(IC_TOKENS),
    savedUsd: Math.round(at(IC_SAVED) * 1e9) / 1e9,
  };
}
