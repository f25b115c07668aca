import { describe, expect, it } from 'vitest';
import { implicitCacheCounterFields } from '../../../functions/core/implicit-cache.js';
import { sumTotals } from '../../../functions/core/totals.js';

describe("the job's implicit-cache totals", () => {
  const answer = (cachedTokens: number, implicitSavedUsd?: number) => ({
    state: 'succeeded',
    usage: { promptTokens: 2000, outputTokens: 10, ...(cachedTokens ? { cachedTokens } : {}) },
    ...(implicitSavedUsd !== undefined ? { implicitSavedUsd } : {}),
  });

  it('reports the share of answers that read cached input, the tokens and the saving', () => {
    const parts = [answer(0), answer(1500, 0.0004), answer(1500, 0.0004), answer(0)].map(
      implicitCacheCounterFields,
    );
    const totals = sumTotals(parts, 4);
    expect(totals.implicitCache).toEqual({ hitRate: 0.5, cachedTokens: 3000, savedUsd: 0.0008 });
  });

  it('counts no response-cache hit and no failure as an answer, and says nothing before a hit', () => {
    expect(implicitCacheCounterFields({ ...answer(1500, 1), cached: { savedUsd: 1 } })).toEqual({});
    expect(implicitCacheCounterFields({ state: 'failed' })).toEqual({});
    expect(
      sumTotals([answer(0), answer(0)].map(implicitCacheCounterFields), 2).implicitCache,
    ).toBeUndefined();
  });
});
