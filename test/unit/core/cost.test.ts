import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CACHED_INPUT_SHARE, costUsd, tierCost, tierShare, usageFrom } from '../../../functions/core/cost.js';
import { parseQuotas } from '../../../functions/core/quotas.js';

// Figures of the Gemini API pricing page (infra/quotas.json's priceSource), USD per 1M tokens.
const bundled = parseQuotas(
  JSON.parse(readFileSync(new URL('../../../infra/quotas.json', import.meta.url), 'utf8')),
  'infra/quotas.json',
);
const flash = { inputPerMillion: 0.3, outputPerMillion: 2.5 };

describe('usageFrom', () => {
  it('bills thinking tokens as output', () => {
    expect(usageFrom({ promptTokenCount: 100, candidatesTokenCount: 20, thoughtsTokenCount: 30 })).toEqual({
      promptTokens: 100,
      outputTokens: 50,
    });
  });

  it('keeps tool-use prompt tokens apart from the prompt', () => {
    expect(
      usageFrom({ promptTokenCount: 100, toolUsePromptTokenCount: 40, candidatesTokenCount: 5 }),
    ).toEqual({
      promptTokens: 100,
      outputTokens: 5,
      toolUseTokens: 40,
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

  it('rounds to a nano-dollar so sums stay stable', () => {
    const usd = costUsd({ promptTokens: 7, outputTokens: 3 }, flash);

    expect(usd).toBe(Math.round(usd * 1e9) / 1e9);
    expect(usd).toBeCloseTo((7 * 0.3 + 3 * 2.5) / 1e6, 12);
  });

  it('costs nothing for no tokens', () => {
    expect(costUsd({ promptTokens: 0, outputTokens: 0 }, flash)).toBe(0);
  });
});

describe('cost as the pricing page bills it', () => {
  const price = (model: string) => {
    const quota = bundled.models[model];
    if (!quota) throw new Error(`no ${model} in infra/quotas.json`);
    return quota.price;
  };

  it('names the page and the day its figures were read', () => {
    expect(bundled.priceSource?.page).toBe('https://ai.google.dev/gemini-api/docs/pricing');
    expect(bundled.priceSource?.checked).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('bills thinking tokens at the output price (2.5 Flash: $2.50)', () => {
    const usage = usageFrom({
      promptTokenCount: 1_000_000,
      candidatesTokenCount: 100_000,
      thoughtsTokenCount: 200_000,
    });
    // 1M × $0.30 + (100k + 200k) × $2.50
    expect(costUsd(usage, price('gemini-2.5-flash'))).toBeCloseTo(0.3 + 0.75, 9);
  });

  it("bills cached input at each model's cached price", () => {
    const usage = usageFrom({ promptTokenCount: 1_000_000, cachedContentTokenCount: 400_000 });
    // 2.5 Flash: 600k × $0.30 + 400k × $0.03
    expect(costUsd(usage, price('gemini-2.5-flash'))).toBeCloseTo(0.18 + 0.012, 9);
    // 2.5 Flash-Lite: 600k × $0.10 + 400k × $0.01
    expect(costUsd(usage, price('gemini-2.5-flash-lite'))).toBeCloseTo(0.06 + 0.004, 9);
    // 2.5 Pro: 600k is over 200k, so the long-context rows: 600k × $2.50 + 400k × $0.25
    expect(costUsd(usage, price('gemini-2.5-pro'))).toBeCloseTo(1.5 + 0.1, 9);
    // 2.0 Flash: 600k × $0.10 + 400k × $0.025 (its cached rate is 25%)
    expect(costUsd(usage, price('gemini-2.0-flash'))).toBeCloseTo(0.06 + 0.01, 9);
  });

  it('bills cached input at 10% of the input price for a model without its own cached price', () => {
    expect(CACHED_INPUT_SHARE).toBe(0.1);
    expect(costUsd({ promptTokens: 1_000_000, outputTokens: 0, cachedTokens: 1_000_000 }, flash)).toBeCloseTo(
      0.03,
      9,
    );
  });

  it('bills tool-use prompt tokens at the input price', () => {
    const usage = usageFrom({ promptTokenCount: 100_000, toolUsePromptTokenCount: 50_000 });
    // (100k + 50k) × $0.30
    expect(costUsd(usage, price('gemini-2.5-flash'))).toBeCloseTo(0.045, 9);
  });

  it('bills every token of a 2.5 Pro request over 200k prompt tokens at the long-context prices', () => {
    const pro = price('gemini-2.5-pro');
    // 200k is not over 200k: 200k × $1.25 + 10k × $10
    expect(costUsd({ promptTokens: 200_000, outputTokens: 10_000 }, pro)).toBeCloseTo(0.25 + 0.1, 9);
    // 300k: 300k × $2.50 + 10k × $15
    expect(costUsd({ promptTokens: 300_000, outputTokens: 10_000 }, pro)).toBeCloseTo(0.75 + 0.15, 9);
    // 2.5 Pro's cached price below the threshold: 100k × $0.125 + 50k × $1.25
    expect(costUsd({ promptTokens: 150_000, outputTokens: 0, cachedTokens: 100_000 }, pro)).toBeCloseTo(
      0.0125 + 0.0625,
      9,
    );
  });

  it('has no long-context price for 2.5 Flash: 300k prompt tokens cost 300k × $0.30', () => {
    expect(costUsd({ promptTokens: 300_000, outputTokens: 0 }, price('gemini-2.5-flash'))).toBeCloseTo(
      0.09,
      9,
    );
  });

  it("bills each tier at its share: Batch and Flex half, Priority 1.8× (2.5 Pro's $2.25 / $18)", () => {
    const usage = { promptTokens: 1_000_000, outputTokens: 1_000_000 };
    expect(tierShare(bundled, 'gemini-2.5-pro', 'standard')).toBe(1);
    expect(tierShare(bundled, 'gemini-2.5-pro', 'batch')).toBe(0.5);
    expect(tierShare(bundled, 'gemini-2.5-pro', 'flex')).toBe(0.5);
    expect(tierShare(bundled, 'gemini-2.5-pro', 'priority')).toBe(1.8);
    // 2.5 Flash: standard $0.30 + $2.50; Flex and Batch $0.15 + $1.25; Priority $0.54 + $4.50
    expect(tierCost(bundled, 'gemini-2.5-flash', usage, 'standard').costUsd).toBeCloseTo(2.8, 9);
    expect(tierCost(bundled, 'gemini-2.5-flash', usage, 'flex').costUsd).toBeCloseTo(1.4, 9);
    expect(tierCost(bundled, 'gemini-2.5-flash', usage, 'batch').costUsd).toBeCloseTo(1.4, 9);
    expect(tierCost(bundled, 'gemini-2.5-flash', usage, 'priority').costUsd).toBeCloseTo(5.04, 9);
    // 2.5 Pro priority, 100k in and 100k out: 100k × $2.25 + 100k × $18
    expect(
      tierCost(bundled, 'gemini-2.5-pro', { promptTokens: 100_000, outputTokens: 100_000 }, 'priority')
        .costUsd,
    ).toBeCloseTo(0.225 + 1.8, 9);
  });

  it('says what the answer would have cost at standard, to show what a tier saved', () => {
    const usage = { promptTokens: 1_000_000, outputTokens: 0 };
    expect(tierCost(bundled, 'gemini-2.5-flash', usage, 'flex')).toEqual({
      costUsd: 0.15,
      standardCostUsd: 0.3,
    });
    expect(tierCost(bundled, 'no-such-model', usage, 'flex')).toEqual({ costUsd: 0, standardCostUsd: 0 });
  });

  it("takes a model's own Priority share over the deployment's", () => {
    const quotas = parseQuotas({
      ...bundled,
      models: {
        m: { rpm: 1, tpm: 1, rpd: null, batch: false, price: { ...flash, priorityShare: 1.75 } },
      },
      defaultModel: 'm',
    });
    expect(tierShare(quotas, 'm', 'priority')).toBe(1.75);
  });
});
