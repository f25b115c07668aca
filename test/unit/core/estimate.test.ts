import { describe, expect, it } from 'vitest';
import { estimateJob } from '../../../functions/core/estimate.js';
import type { NewItem } from '../../../functions/core/jobs.js';
import { testQuotas } from '../../helpers/test-quotas.js';

const item = (n: number, tokens: number, maxOutputTokens?: number): NewItem => ({
  id: String(n).padStart(9, '0'),
  key: String(n),
  index: n,
  estimatedTokens: tokens,
  request: {
    contents: [{ role: 'user', parts: [{ text: 'x' }] }],
    ...(maxOutputTokens !== undefined ? { generationConfig: { maxOutputTokens } } : {}),
  },
});

describe('estimateJob (dry run)', () => {
  it('prices the input on each tier, and the output only when every item caps it', () => {
    const quotas = testQuotas();
    // 2 items of 500k input tokens on 2.5 Flash ($0.30), capped at 1,000 output tokens ($2.50).
    const capped = estimateJob(
      { model: 'gemini-2.5-flash', mode: 'flex', items: [item(0, 500_000, 1000), item(1, 500_000, 1000)] },
      quotas,
    );
    const open = estimateJob(
      { model: 'gemini-2.5-flash', mode: 'realtime', items: [item(0, 500_000, 1000), item(1, 500_000)] },
      quotas,
    );

    expect(capped).toMatchObject({
      dryRun: true,
      mode: 'flex',
      items: 2,
      tokens: { input: 1_000_000, outputAtMost: 2000, countedBy: 'estimate' },
      costIncludesOutput: true,
    });
    expect(capped.costUsd.standard).toBeCloseTo(0.3 + 0.005, 9);
    expect(capped.costUsd.flex).toBeCloseTo((0.3 + 0.005) / 2, 9);
    expect(capped.costUsd.batch).toBeCloseTo((0.3 + 0.005) / 2, 9);
    expect(capped.costUsd).not.toHaveProperty('priority');
    expect(open).toMatchObject({ tokens: { outputAtMost: null }, costIncludesOutput: false });
    expect(open.costUsd.standard).toBeCloseTo(0.3, 9);
  });

  it('says the least time the quota allows: the slower of RPM and TPM at headroom', () => {
    const quotas = testQuotas(); // 2.5 Flash: 1,000 RPM, 1M TPM, headroom 0.98
    const many = Array.from({ length: 2000 }, (_, n) => item(n, 10));
    const heavy = [item(0, 1_960_000)];

    expect(
      estimateJob({ model: 'gemini-2.5-flash', mode: 'realtime', items: many }, quotas).quotaSeconds,
    ).toBe(122.4);
    expect(
      estimateJob({ model: 'gemini-2.5-flash', mode: 'realtime', items: heavy }, quotas).quotaSeconds,
    ).toBe(120);
  });

  it('prices Priority where the deployment enables it', () => {
    const quotas = testQuotas();
    quotas.serviceTiers.priority.enabled = true;

    const estimate = estimateJob(
      { model: 'gemini-2.5-flash', mode: 'realtime', items: [item(0, 1_000_000)] },
      quotas,
    );

    expect(estimate.costUsd.priority).toBeCloseTo(0.54, 9);
  });
});

describe('estimateJob (dry run) under a spend limit', () => {
  it('allows no faster than the spend limit lets the job through, windows after the first', () => {
    // 100 items of 1,000 input tokens capped at 1,000 output on 2.5 Flash: $0.0028 each, $0.28.
    const quotas = { ...testQuotas(), spendPer10MinUsd: 0.1, headroom: 1 };
    const items = Array.from({ length: 100 }, (_, n) => item(n, 1000, 1000));
    const realtime = estimateJob({ model: 'gemini-2.5-flash', mode: 'realtime', items }, quotas);
    const flex = estimateJob({ model: 'gemini-2.5-flash', mode: 'flex', items }, quotas);
    const unlimited = estimateJob({ model: 'gemini-2.5-flash', mode: 'realtime', items }, testQuotas());
    // 2.8 windows' worth: 1.8 windows of 600 s after the first; Flex at half the price, 0.4 windows.
    expect(realtime.quotaSeconds).toBeCloseTo(1.8 * 600, 0);
    expect(flex.quotaSeconds).toBeCloseTo(0.4 * 600, 0);
    expect(unlimited.quotaSeconds).toBeLessThan(10);
  });
});
