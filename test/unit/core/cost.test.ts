import { describe, expect, it } from 'vitest';
import { costUsd, usageFrom } from '../../../functions/core/cost.js';

const flash = { inputPerMillion: 0.3, outputPerMillion: 2.5 };

describe('usageFrom', () => {
  it('bills thinking tokens as output', () => {
    expect(usageFrom({ promptTokenCount: 100, candidatesTokenCount: 20, thoughtsTokenCount: 30 })).toEqual({
      promptTokens: 100,
      outputTokens: 50,
    });
  });

  it('reads missing counts as zero', () => {
    expect(usageFrom(undefined)).toEqual({ promptTokens: 0, outputTokens: 0 });
    expect(usageFrom({ totalTokenCount: 9 })).toEqual({ promptTokens: 0, outputTokens: 0 });
  });
});

describe('costUsd', () => {
  it('prices input and output per million tokens', () => {
    // 1M input at $0.30 + 1M output at $2.50
    expect(costUsd({ promptTokens: 1_000_000, outputTokens: 1_000_000 }, flash)).toBeCloseTo(2.8, 9);
    expect(costUsd({ promptTokens: 1000, outputTokens: 0 }, flash)).toBeCloseTo(0.0003, 12);
  });

  it('applies the batch discount', () => {
    expect(costUsd({ promptTokens: 1_000_000, outputTokens: 1_000_000 }, flash, 0.5)).toBeCloseTo(1.4, 9);
  });

  it('rounds to a nano-dollar so sums stay stable', () => {
    const usd = costUsd({ promptTokens: 7, outputTokens: 3 }, flash);

    expect(usd).toBe(Math.round(usd * 1e9) / 1e9);
    expect(usd).toBeCloseTo((7 * 0.3 + 3 * 2.5) / 1e6, 12);
  });

  it('costs nothing for no tokens', () => {
    expect(costUsd({ promptTokens: 0, outputTokens: 0 }, flash)).toBe(0);
  });
});

describe('cached input and thinking', () => {
  it('prices cached input at 25% of the input price, thinking as output', () => {
    const usage = usageFrom({
      promptTokenCount: 1_000_000,
      cachedContentTokenCount: 400_000,
      candidatesTokenCount: 100_000,
      thoughtsTokenCount: 200_000,
    });
    expect(usage).toEqual({ promptTokens: 1_000_000, outputTokens: 300_000, cachedTokens: 400_000 });
    // 600k × 0.30 + 400k × 0.075 + 300k × 2.50, per million
    expect(costUsd(usage, flash)).toBeCloseTo(0.18 + 0.03 + 0.75, 9);
  });

  it("takes the model's own cached price when it has one", () => {
    expect(
      costUsd(
        { promptTokens: 1_000_000, outputTokens: 0, cachedTokens: 1_000_000 },
        { ...flash, cachedInputPerMillion: 0.03 },
      ),
    ).toBeCloseTo(0.03, 9);
  });
});
