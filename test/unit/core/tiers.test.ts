import { describe, expect, it } from 'vitest';
import { routeJob } from '../../../functions/core/batch.js';
import { MAX_DEADLINE_MS, parseDeadline } from '../../../functions/core/deadline.js';
import { batchPartCounters, sumTotals, tierCounterFields } from '../../../functions/core/totals.js';
import { servedTierOf } from '../../../functions/platform/gemini/client.js';
import { testQuotas } from '../../helpers/test-quotas.js';

const NOW = Date.parse('2026-12-06T12:00:00Z');

describe('parseDeadline', () => {
  it('reads durations from now and ISO times', () => {
    expect(parseDeadline('30m', NOW)).toEqual({ deadlineMs: NOW + 30 * 60_000 });
    expect(parseDeadline('6h', NOW)).toEqual({ deadlineMs: NOW + 6 * 3_600_000 });
    expect(parseDeadline('1h30m', NOW)).toEqual({ deadlineMs: NOW + 90 * 60_000 });
    expect(parseDeadline('2026-12-06T18:00:00Z', NOW)).toEqual({ deadlineMs: NOW + 6 * 3_600_000 });
    expect(parseDeadline('2026-12-06T14:00:00+01:00', NOW)).toEqual({ deadlineMs: NOW + 3_600_000 });
  });

  it('refuses what is not a deadline, one in the past, or one too far', () => {
    expect(parseDeadline('soon', NOW)).toHaveProperty('problem');
    expect(parseDeadline('30', NOW)).toHaveProperty('problem');
    expect(parseDeadline('2026-12-06', NOW)).toHaveProperty('problem');
    expect(parseDeadline('2026-12-06T11:00:00Z', NOW)).toEqual({ problem: 'must be in the future' });
    expect(parseDeadline(`${MAX_DEADLINE_MS / 86_400_000 + 1}d`, NOW)).toEqual({
      problem: 'must be within 7 days',
    });
  });
});

describe('tier totals', () => {
  it('counts items and cost per tier that served them, and what they saved against standard', () => {
    const parts = [
      {
        succeeded: 1,
        costUsd: 0.5,
        ...tierCounterFields({ tier: 'flex', costUsd: 0.5, standardCostUsd: 1 }),
      },
      {
        succeeded: 1,
        costUsd: 1,
        ...tierCounterFields({ tier: 'standard', costUsd: 1, standardCostUsd: 1 }),
      },
      {
        succeeded: 1,
        costUsd: 1.8,
        ...tierCounterFields({ tier: 'priority', costUsd: 1.8, standardCostUsd: 1 }),
      },
      batchPartCounters({ succeeded: 2, failed: 1, costUsd: 1, standardCostUsd: 2 }),
    ];

    const totals = sumTotals(parts, 6);

    expect(totals.tiers).toEqual({
      standard: { items: 1, costUsd: 1 },
      flex: { items: 1, costUsd: 0.5 },
      priority: { items: 1, costUsd: 1.8 },
      batch: { items: 2, costUsd: 1 },
    });
    // All at standard: 1 + 1 + 1 + 2 = 5; paid 4.3.
    expect(totals.savedUsd).toBeCloseTo(0.7, 9);
    expect(totals.costUsd).toBeCloseTo(4.3, 9);
    expect(totals.counts).toMatchObject({ succeeded: 5, failed: 1, pending: 0 });
  });

  it('leaves tiers and savings out when no answer says its tier (jobs recorded before tiers were)', () => {
    const totals = sumTotals([{ succeeded: 2, costUsd: 1 }], 2);

    expect(totals).not.toHaveProperty('tiers');
    expect(totals).not.toHaveProperty('savedUsd');
  });
});

describe('flex routing and the served tier', () => {
  it('routes mode flex to the queues on Flex, on any model', () => {
    expect(routeJob('flex', 50_000, 'gemini-2.5-flash', testQuotas())).toEqual({ mode: 'flex' });
  });

  it("reads the tier from Gemini's x-gemini-service-tier header, else the tier asked for", () => {
    expect(servedTierOf('standard', 'priority')).toBe('standard');
    expect(servedTierOf('FLEX', 'flex')).toBe('flex');
    expect(servedTierOf(undefined, 'flex')).toBe('flex');
    expect(servedTierOf('something-new', undefined)).toBe('standard');
  });
});

describe('mode auto with a deadline', () => {
  const quotas = testQuotas();
  const MIN = 60_000;
  const HOUR = 3_600_000;

  it('goes standard when the deadline is close, Flex when minutes are fine, Batch when hours are and the set is big', () => {
    expect(routeJob('auto', 10, 'gemini-2.5-flash', quotas, 10 * MIN)).toEqual({ mode: 'realtime' });
    expect(routeJob('auto', 10, 'gemini-2.5-flash', quotas, 45 * MIN)).toEqual({ mode: 'flex' });
    expect(routeJob('auto', 10, 'gemini-2.5-flash', quotas, 30 * HOUR)).toEqual({ mode: 'flex' });
    expect(routeJob('auto', 5_000, 'gemini-2.5-flash', quotas, 2 * HOUR)).toEqual({ mode: 'flex' });
    expect(routeJob('auto', 5_000, 'gemini-2.5-flash', quotas, 30 * HOUR)).toEqual({ mode: 'batch' });
  });

  it("takes a model's own thresholds over the deployment's", () => {
    const own = testQuotas();
    own.models['gemini-2.5-pro']!.routing = { flexMinMs: 2 * HOUR };

    expect(routeJob('auto', 10, 'gemini-2.5-pro', own, HOUR)).toEqual({ mode: 'realtime' });
    expect(routeJob('auto', 10, 'gemini-2.5-flash', own, HOUR)).toEqual({ mode: 'flex' });
  });

  it('sends a close deadline to Priority only where the deployment enables it', () => {
    const enabled = testQuotas();
    enabled.serviceTiers.priority.enabled = true;

    expect(routeJob('auto', 10, 'gemini-2.5-flash', quotas, 10 * MIN)).toEqual({ mode: 'realtime' });
    expect(routeJob('auto', 10, 'gemini-2.5-flash', enabled, 10 * MIN)).toEqual({
      mode: 'realtime',
      priority: true,
    });
    expect(routeJob('auto', 10, 'gemini-2.5-flash', enabled, 45 * MIN)).toEqual({ mode: 'flex' });
    expect(routeJob('realtime', 10, 'gemini-2.5-flash', enabled, 10 * MIN)).toEqual({ mode: 'realtime' });
  });

  it('keeps an explicit mode whatever the deadline', () => {
    expect(routeJob('realtime', 5_000, 'gemini-2.5-flash', quotas, 30 * HOUR)).toEqual({ mode: 'realtime' });
    expect(routeJob('flex', 10, 'gemini-2.5-flash', quotas, MIN)).toEqual({ mode: 'flex' });
  });
});
