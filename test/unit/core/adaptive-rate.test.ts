import { describe, expect, it } from 'vitest';
import {
  type AdaptiveRate,
  adaptiveRpm,
  advanceAdaptiveRate,
  DEFAULT_ADAPTIVE_RATE,
  decreaseAdaptiveRate,
} from '../../../functions/core/adaptive-rate.js';
import { reserveForJob } from '../../../functions/core/job-plan.js';
import { parseQuotas } from '../../../functions/core/quotas.js';
import { AUTO_RPM_CEILING, adaptiveEverywhere } from '../../../functions/core/quotas-adaptive.js';
import type { DispatchLedger } from '../../../functions/core/rate.js';
import { testQuotas } from '../../helpers/test-quotas.js';

const T0 = Date.parse('2026-03-01T10:00:00Z');
const S = { ...DEFAULT_ADAPTIVE_RATE, startRpm: 60, increaseRpmPerMinute: 30, decreaseFactor: 0.5 };

describe('the AIMD rule', () => {
  it('starts at startRpm, capped by the ceiling', () => {
    expect(adaptiveRpm(undefined, 1000, S)).toBe(60);
    expect(adaptiveRpm(undefined, 40, S)).toBe(40);
    expect(advanceAdaptiveRate(undefined, 1000, T0, 0, S)).toEqual({ rpm: 60, atMs: T0 });
  });

  it('adds increaseRpmPerMinute per minute while the last minute used at least half the rate', () => {
    // Arrange
    const state: AdaptiveRate = { rpm: 100, atMs: T0 };
    // Act
    const busy = advanceAdaptiveRate(state, 1000, T0 + 30_000, 50, S);
    const idle = advanceAdaptiveRate(state, 1000, T0 + 30_000, 49, S);
    const capped = advanceAdaptiveRate(state, 110, T0 + 60_000, 100, S);
    // Assert
    expect(busy.rpm).toBe(115);
    expect(idle).toEqual({ rpm: 100, atMs: T0 + 30_000 });
    expect(capped.rpm).toBe(110);
  });

  it('earns at most one minute of increase however long since the last advance', () => {
    const later = advanceAdaptiveRate({ rpm: 100, atMs: T0 }, 1000, T0 + 3_600_000, 100, S);
    expect(later.rpm).toBe(130);
  });

  it('multiplies the rate by decreaseFactor on a 429, once per sameWindowMs, never under the floor', () => {
    // Arrange
    const state: AdaptiveRate = { rpm: 200, atMs: T0 };
    // Act
    const first = decreaseAdaptiveRate(state, 1000, T0 + 1000, S);
    const sameWindow = decreaseAdaptiveRate(first, 1000, T0 + 1000 + S.sameWindowMs - 1, S);
    const next = decreaseAdaptiveRate(first, 1000, T0 + 1000 + S.sameWindowMs, S);
    let low = next;
    for (let i = 1; i < 20; i++) low = decreaseAdaptiveRate(low, 1000, T0 + i * 60_000, S);
    // Assert
    expect(first).toEqual({ rpm: 100, atMs: T0 + 1000, decreasedAtMs: T0 + 1000 });
    expect(sameWindow).toBe(first);
    expect(next.rpm).toBe(50);
    expect(low.rpm).toBe(S.floorRpm);
  });

  it('settles under a pool of fixed capacity with few refusals (a closed loop, simulated minutes)', () => {
    // Arrange: a pool that admits CAPACITY requests in any 60 s; the plan sends at the rate, evenly.
    const CAPACITY = 600;
    let state: AdaptiveRate | undefined;
    const sent: number[] = [];
    let refused = 0;
    let total = 0;
    let carry = 0;
    let head = 0; // sent[head..] are the sends of the last 60 s
    // Act: 30 minutes, second by second.
    for (let s = 0; s < 1800; s++) {
      const now = T0 + s * 1000;
      while (head < sent.length && sent[head]! <= now - 60_000) head++;
      state = advanceAdaptiveRate(state, 10_000, now, sent.length - head, S);
      carry += state.rpm / 60;
      for (; carry >= 1; carry--) {
        total++;
        if (sent.length - head >= CAPACITY) {
          refused++;
          state = decreaseAdaptiveRate(state, 10_000, now, S);
        } else sent.push(now);
      }
    }
    const lastTen = sent.filter((t) => t > T0 + 1200_000).length / 10;
    // Assert: the rate hovers below the pool's capacity and a small share of requests is refused.
    expect(lastTen).toBeGreaterThan(CAPACITY * 0.6);
    expect(lastTen).toBeLessThanOrEqual(CAPACITY);
    expect(refused / total).toBeLessThan(0.02);
  });
});

describe('the adaptive plan on the ledger', () => {
  const base = testQuotas().models['gemini-2.5-flash']!;

  it('plans an adaptive model at its rate, not its ceiling, and keeps the state on the ledger', () => {
    // Arrange: a ceiling of 1,000 RPM, an adaptive rate of 120 RPM.
    const quota = { ...base, rpm: 1000, adaptive: { ...S, startRpm: 120 } };
    const ledger: DispatchLedger = { buckets: {}, adaptive: { rpm: 120, atMs: T0 } };
    // Act
    const planned = reserveForJob(ledger, undefined, new Array(240).fill(10), T0, quota, 1);
    const fixed = reserveForJob({ buckets: {} }, undefined, new Array(240).fill(10), T0, base, 1);
    // Assert: 240 requests at 120 RPM take about two minutes; at the ceiling, a quarter of one.
    expect(planned.scheduleMs.at(-1)! - T0).toBeGreaterThan(110_000);
    expect(fixed.scheduleMs.at(-1)! - T0).toBeLessThan(20_000);
    expect(planned.ledger.adaptive).toEqual({ rpm: 120, atMs: T0 });
    expect(fixed.ledger.adaptive).toBeUndefined();
  });
});

describe('rpm "auto" in the quotas file', () => {
  it('reads "auto" as the ceiling maxRpm (else 30,000) with the adaptive settings', () => {
    // Arrange
    const file = structuredClone(testQuotas()) as unknown as {
      models: Record<string, Record<string, unknown>>;
      adaptiveRate?: unknown;
    };
    file.models['gemini-2.5-flash']!.rpm = 'auto';
    file.models['gemini-2.5-flash']!.maxRpm = 2000;
    file.adaptiveRate = { startRpm: 30 };
    // Act
    const quotas = parseQuotas(file);
    delete file.models['gemini-2.5-flash']!.maxRpm;
    const unbounded = parseQuotas(file);
    // Assert
    expect(quotas.models['gemini-2.5-flash']).toMatchObject({ rpm: 2000, adaptive: { startRpm: 30 } });
    expect(unbounded.models['gemini-2.5-flash']).toMatchObject({ rpm: AUTO_RPM_CEILING });
    expect(quotas.models['gemini-2.5-pro']).toMatchObject({ rpm: 150 });
    expect(quotas.models['gemini-2.5-pro']?.adaptive).toBeUndefined();
    expect(adaptiveEverywhere(quotas).models['gemini-2.5-pro']).toMatchObject({
      rpm: 150,
      adaptive: { startRpm: 30 },
    });
  });

  it('refuses any other word', () => {
    const file = structuredClone(testQuotas()) as unknown as {
      models: Record<string, Record<string, unknown>>;
    };
    file.models['gemini-2.5-flash']!.rpm = 'unlimited';
    expect(() => parseQuotas(file)).toThrow(/models.gemini-2.5-flash.rpm/);
  });
});
