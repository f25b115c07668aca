import { describe, expect, it } from 'vitest';
import { addToJobPlan, releaseJobPlan, takeFromJobPlan } from '../../../functions/core/job-plan.js';
import { requestsInSecond } from '../../../functions/core/queue-capacity.js';
import { MAX_DISPATCHES_PER_SECOND, queueRateLimits } from '../../../functions/core/queue-rate.js';
import {
  type DispatchLedger,
  LIGHT_WINDOW_SHARE,
  lateSendNeedsSlot,
  PACE_SECONDS,
  PLAN_SLACK_SECONDS,
  planDispatches,
} from '../../../functions/core/rate.js';
import { createPrng as prng } from '../../../infra/local/prng.js';

const MINUTE_MS = 60_000;

/** The most tokens any window [t, t + 60 s) holds, counting each item at its schedule time. */
function busiestMinute(planned: Array<{ atMs: number; tokens: number }>): {
  tokens: number;
  startMs: number;
} {
  const sorted = [...planned].sort((a, b) => a.atMs - b.atMs);
  let best = { tokens: 0, startMs: 0 };
  let end = 0;
  let sum = 0;
  for (let start = 0; start < sorted.length; start++) {
    while (end < sorted.length && sorted[end]!.atMs < sorted[start]!.atMs + MINUTE_MS) {
      sum += sorted[end]!.tokens;
      end++;
    }
    if (sum > best.tokens) best = { tokens: sum, startMs: sorted[start]!.atMs };
    sum -= sorted[start]!.tokens;
  }
  return best;
}

/**
 * Several jobs of one model planned one after another on a shared ledger, as `reserveDispatches` does:
 * each call starts a little later than the previous one.
 */
function planSharedLedger(seed: number, tpm: number, headroom: number, largestShare = 1 / 4) {
  const random = prng(seed);
  const budget = tpm * headroom;
  let ledger: DispatchLedger = { buckets: {} };
  let nowMs = 1_700_000_000_000;
  const planned: Array<{ atMs: number; tokens: number }> = [];
  let maxItem = 0;
  const calls = 1 + Math.floor(random() * 5);
  for (let c = 0; c < calls; c++) {
    nowMs += Math.floor(random() * 30_000);
    const count = 1 + Math.floor(random() * 300);
    // Items from tiny to `largestShare` of the minute's budget.
    const tokens = Array.from({ length: count }, () =>
      Math.max(1, Math.floor(random() ** 3 * budget * largestShare)),
    );
    const result = planDispatches(ledger, tokens, nowMs, { tpm, rpm: FAST_RPM }, headroom);
    ledger = result.ledger;
    tokens.forEach((t, i) => {
      planned.push({ atMs: result.scheduleMs[i]!, tokens: t });
      maxItem = Math.max(maxItem, t);
    });
  }
  return { planned, budget, maxItem };
}

const TPMS = [20_000, 250_000, 1_000_000, 4_000_000];
/** An RPM so high that only tokens bind (the queue's 500 dispatches a second). */
const FAST_RPM = 10_000_000;

describe('queueRateLimits', () => {
  it('keeps burst + 60 × rate within floor(rpm × headroom) for every rpm up to 100000 (budget ≥ 2)', () => {
    for (const headroom of [1, 0.98, 0.9, 0.5]) {
      for (let rpm = 1; rpm <= 100_000; rpm++) {
        const budget = Math.floor(rpm * headroom);
        if (budget < 2) continue; // covered by the next test
        const limits = queueRateLimits({ rpm }, headroom);
        const perMinute = limits.maxBurstSize + 60 * limits.maxDispatchesPerSecond;
        if (perMinute > budget + 1e-9) {
          expect.fail(`rpm ${rpm}, headroom ${headroom}: ${perMinute} per minute > ${budget}`);
        }
      }
    }
  });

  it('gives the smallest quotas a positive rate and at most one dispatch a minute', () => {
    for (const rpm of [1, 2]) {
      const limits = queueRateLimits({ rpm }, 0.98);

      expect(limits.maxDispatchesPerSecond).toBeGreaterThan(0);
      expect(limits.maxBurstSize).toBe(1);
      expect(Math.floor(limits.maxBurstSize + 60 * limits.maxDispatchesPerSecond)).toBeLessThanOrEqual(1);
    }
  });

  it('never asks Cloud Tasks for more than 500 dispatches a second or a burst above 500', () => {
    for (const rpm of [1, 60, 1000, 30_000, 30_600, 31_000, 100_000, 10_000_000]) {
      const limits = queueRateLimits({ rpm }, 1);

      expect(limits.maxDispatchesPerSecond).toBeLessThanOrEqual(MAX_DISPATCHES_PER_SECOND);
      expect(limits.maxBurstSize).toBeLessThanOrEqual(500);
      expect(limits.maxBurstSize).toBeGreaterThanOrEqual(1);
      expect(limits.maxConcurrentDispatches).toBeLessThanOrEqual(5000);
    }
  });

  it('uses nearly all of a typical budget (nothing left on the table)', () => {
    const limits = queueRateLimits({ rpm: 1000 }, 0.98);

    const perMinute = limits.maxBurstSize + 60 * limits.maxDispatchesPerSecond;
    expect(perMinute).toBeGreaterThan(980 - 1);
    expect(perMinute).toBeLessThanOrEqual(980);
  });
});

describe('planDispatches', () => {
  it('keeps every 60-second window within tpm × headroom, as its doc comment claims', () => {
    const violations: string[] = [];
    for (let seed = 1; seed <= 200; seed++) {
      const tpm = TPMS[seed % TPMS.length]!;
      const { planned, budget } = planSharedLedger(seed, tpm, 0.98);

      const busiest = busiestMinute(planned);

      if (busiest.tokens > budget)
        violations.push(`seed ${seed} (tpm ${tpm}): ${busiest.tokens} tokens in a minute > ${budget}`);
    }
    expect(violations, violations.slice(0, 5).join('\n')).toEqual([]);
  });

  it('keeps a half-budget item and a full-budget item out of one minute (minimal case)', () => {
    // tpm 1,000,000 at headroom 1: the budget is 1,000,000 tokens a minute.
    const { scheduleMs } = planDispatches(
      { buckets: {} },
      [500_000, 1_000_000],
      0,
      { tpm: 1_000_000, rpm: FAST_RPM },
      1,
    );

    const busiest = busiestMinute([
      { atMs: scheduleMs[0]!, tokens: 500_000 },
      { atMs: scheduleMs[1]!, tokens: 1_000_000 },
    ]);
    expect(busiest.tokens).toBeLessThanOrEqual(1_000_000);
  });

  it('keeps every window within budget also when single items approach the whole budget', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const tpm = TPMS[seed % TPMS.length]!;
      const { planned, budget } = planSharedLedger(seed, tpm, 0.98, 1);

      const busiest = busiestMinute(planned);

      expect(busiest.tokens).toBeLessThanOrEqual(budget);
    }
  });

  it('gives a light set `now` for every item', () => {
    const nowMs = 1_700_000_000_000;
    const tokens = Array.from({ length: 30 }, () => 800); // 24,000 tokens: within an idle first second's share

    const fresh = planDispatches({ buckets: {} }, tokens, nowMs, { tpm: 1_000_000, rpm: FAST_RPM }, 0.98);
    const staleLedger = planDispatches(
      { buckets: { [String(nowMs / 1000 - 3600)]: 980_000 } },
      tokens,
      nowMs,
      { tpm: 1_000_000, rpm: FAST_RPM },
      0.98,
    );

    expect(fresh.scheduleMs).toEqual(tokens.map(() => nowMs));
    expect(staleLedger.scheduleMs).toEqual(tokens.map(() => nowMs));
  });

  it('paces the first minute on tokens as on requests: no 10 seconds carry more than 11 60ths of the budget and one item', () => {
    // Arrange: 120 long prompts at 90,000 TPM (the TPM-bound case).
    const nowMs = 1_700_000_000_000;
    const quota = { tpm: 90_000, rpm: FAST_RPM };
    const tokens = Array.from({ length: 120 }, () => 1_000);
    const budget = Math.floor(90_000 * 0.98);

    // Act
    const { scheduleMs } = planDispatches({ buckets: {} }, tokens, nowMs, quota, 0.98);

    // Assert: every 10-second window, and the first minute.
    const first = Math.floor(nowMs / 1000);
    const perSecond = new Map<number, number>();
    for (const [i, at] of scheduleMs.entries())
      perSecond.set(Math.floor(at / 1000), (perSecond.get(Math.floor(at / 1000)) ?? 0) + tokens[i]!);
    for (let end = first; end < first + 180; end++) {
      let window = 0;
      for (let s = end - PACE_SECONDS + 1; s <= end; s++) window += perSecond.get(s) ?? 0;
      expect(window).toBeLessThanOrEqual((budget * (PACE_SECONDS + 1)) / 60 + 1_000);
    }
    const firstMinute = scheduleMs.filter((at) => at < nowMs + MINUTE_MS).length * 1_000;
    expect(firstMinute).toBeLessThanOrEqual(budget);
    expect(firstMinute).toBeGreaterThan(0.9 * budget);
  });

  it('spreads a heavy set over time and never schedules before now', () => {
    const nowMs = 1_700_000_000_000;
    const tokens = Array.from({ length: 100 }, () => 50_000); // 5M tokens at 980k a minute

    const { scheduleMs } = planDispatches(
      { buckets: {} },
      tokens,
      nowMs,
      { tpm: 1_000_000, rpm: FAST_RPM },
      0.98,
    );

    expect(Math.min(...scheduleMs)).toBe(nowMs);
    expect(scheduleMs.at(-1)! - nowMs).toBeGreaterThan(4 * MINUTE_MS);
  });

  it('returns non-decreasing schedule times, also across calls sharing the ledger', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const { planned } = planSharedLedger(seed, TPMS[seed % TPMS.length]!, 0.98);

      const times = planned.map((p) => p.atMs);

      for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]!);
    }
  });

  it('makes a second job on the same model wait for the budget the first one took', () => {
    const nowMs = 1_700_000_000_000;
    const first = planDispatches({ buckets: {} }, [980_000], nowMs, { tpm: 1_000_000, rpm: FAST_RPM }, 0.98);

    const second = planDispatches(
      first.ledger,
      [1000],
      nowMs + 1000,
      { tpm: 1_000_000, rpm: FAST_RPM },
      0.98,
    );

    expect(second.scheduleMs[0]).toBeGreaterThanOrEqual(nowMs + MINUTE_MS);
  });

  it('keeps every minute within budget when each send runs up to the slack behind its plan', () => {
    const violations: string[] = [];
    for (let seed = 1; seed <= 200; seed++) {
      const tpm = TPMS[seed % TPMS.length]!;
      const { planned, budget } = planSharedLedger(seed, tpm, 0.98, 1);
      const late = prng(seed * 7919);

      const sent = planned.map((p) => ({
        atMs: p.atMs + Math.floor(late() * PLAN_SLACK_SECONDS * 1000),
        tokens: p.tokens,
      }));
      const busiest = busiestMinute(sent);

      if (busiest.tokens > budget)
        violations.push(`seed ${seed} (tpm ${tpm}): ${busiest.tokens} tokens in a minute > ${budget}`);
    }
    expect(violations, violations.slice(0, 5).join('\n')).toEqual([]);
  });

  it('plans no more requests in a second than the queue dispatches, so every minute stays within RPM', () => {
    for (const rpm of [2, 60, 600, 1000, 6000, 30_000]) {
      const quota = { rpm, tpm: 1_000_000_000 };
      const { maxDispatchesPerSecond: rate, maxBurstSize } = queueRateLimits(quota, 0.98);
      const nowMs = 1_700_000_000_250;
      const nowSec = Math.floor(nowMs / 1000);
      const first = planDispatches(
        { buckets: {} },
        Array(Math.min(3 * rpm, 5000)).fill(10),
        nowMs,
        quota,
        0.98,
      );
      const second = planDispatches(first.ledger, Array(50).fill(10), nowMs + 5000, quota, 0.98);

      const perSecond = new Map<number, number>();
      for (const at of [...first.scheduleMs, ...second.scheduleMs]) {
        const s = Math.floor(at / 1000);
        perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
      }
      for (const [s, n] of perSecond) {
        // The idle queue's first second also has its burst.
        const queueSends = requestsInSecond(s, rate) + (s === nowSec ? maxBurstSize : 0);
        expect(n, `rpm ${rpm}, second ${s}`).toBeLessThanOrEqual(queueSends);
      }
      // Any 60 whole seconds: at most burst + 60 × rate, which is within the budget. (Within a
      // second the queue's token bucket paces them; the plan counts whole seconds.)
      const seconds = [...perSecond.keys()];
      for (let from = Math.min(...seconds); from <= Math.max(...seconds); from++) {
        let minute = 0;
        for (let s = from; s < from + 60; s++) minute += perSecond.get(s) ?? 0;
        expect(minute, `rpm ${rpm}, seconds ${from}…${from + 59}`).toBeLessThanOrEqual(
          Math.floor(rpm * 0.98),
        );
      }
    }
  });

  it('gives the burst only to a queue idle for a minute', () => {
    const quota = { rpm: 6000, tpm: 1e9 };
    const nowMs = 1_700_000_000_000;
    const busy = planDispatches({ buckets: {} }, [10], nowMs - 30_000, quota, 0.98);
    const rested = planDispatches({ buckets: {} }, [10], nowMs - 61_000, quota, 0.98);

    const afterBusy = planDispatches(busy.ledger, Array(200).fill(10), nowMs, quota, 0.98);
    const afterRest = planDispatches(rested.ledger, Array(200).fill(10), nowMs, quota, 0.98);

    expect(afterBusy.scheduleMs.filter((at) => at === nowMs)).toHaveLength(96);
    expect(afterRest.scheduleMs.filter((at) => at === nowMs)).toHaveLength(96 + 98);
  });

  it('spreads requests at the queue rate after the burst: 2,000 at 6,000 RPM end in the 20th second, evenly spread', () => {
    const nowMs = 1_700_000_000_000;

    const { scheduleMs } = planDispatches(
      { buckets: {} },
      Array(2000).fill(10),
      nowMs,
      { rpm: 6000, tpm: 1e9 },
      0.98,
    );

    // 96 a second plus the burst of 98 now; then 96.4 a second.
    expect(scheduleMs.filter((at) => at === nowMs)).toHaveLength(96 + 98);
    expect(Math.floor((scheduleMs.at(-1)! - nowMs) / 1000)).toBe(19);
    // Within a later second the requests are spread evenly, as the queue sends them.
    const second = scheduleMs.filter((at) => at >= nowMs + 1000 && at < nowMs + 2000);
    const gaps = second.slice(1).map((at, i) => at - second[i]!);
    expect(second[0]).toBe(nowMs + 1000);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(11);
  });

  it('plans only the items that fit before untilMs, leaving the ledger without the rest', () => {
    const nowMs = 1_700_000_000_000;
    const quota = { rpm: 60, tpm: 1e9 };

    const { scheduleMs, ledger } = planDispatches(
      { buckets: {} },
      Array(500).fill(10),
      nowMs,
      quota,
      0.98,
      undefined,
      nowMs + 60_000,
    );

    const planned = Object.values(ledger.requests ?? {}).reduce((a, b) => a + b, 0);
    expect(scheduleMs.length).toBeGreaterThan(50);
    expect(scheduleMs.length).toBeLessThan(70);
    expect(Math.max(...scheduleMs)).toBeLessThan(nowMs + 61_000);
    expect(planned).toBe(scheduleMs.length);
  });

  it('takes back a released reservation, so an item planned again does not count twice', () => {
    const nowMs = 1_700_000_000_000;
    const quota = { tpm: 1_000_000, rpm: FAST_RPM };
    const full = planDispatches({ buckets: {} }, [980_000], nowMs, quota, 0.98);

    const kept = planDispatches(full.ledger, [980_000], nowMs + 5000, quota, 0.98);
    const released = planDispatches(full.ledger, [980_000], nowMs + 5000, quota, 0.98, {
      atMs: nowMs,
      tokens: 980_000,
    });

    expect(kept.scheduleMs[0]).toBeGreaterThan(nowMs + MINUTE_MS);
    expect(released.scheduleMs[0]).toBe(nowMs + 5000);
  });
});

describe('lateSendNeedsSlot', () => {
  const quota = { tpm: 100_000, rpm: FAST_RPM };
  const nowMs = 1_700_000_000_000;
  const budget = 100_000;
  const at = (second: number, tokens: number): DispatchLedger => ({
    buckets: { [String(nowMs / 1000 + second)]: tokens },
  });

  it('lets a send into an empty or light ledger go ahead', () => {
    expect(lateSendNeedsSlot({ buckets: {} }, nowMs, 1000, quota, 1)).toBe(false);
    expect(lateSendNeedsSlot(at(-30, budget * LIGHT_WINDOW_SHARE - 1000), nowMs, 1000, quota, 1)).toBe(false);
  });

  it('asks for a slot when a window around the send, before or after it, is busy', () => {
    expect(lateSendNeedsSlot(at(-30, budget * LIGHT_WINDOW_SHARE), nowMs, 1000, quota, 1)).toBe(true);
    expect(lateSendNeedsSlot(at(50, budget * LIGHT_WINDOW_SHARE), nowMs, 1000, quota, 1)).toBe(true);
  });

  it("counts requests only for a send the queue's rate does not bound (a packed task's)", () => {
    // Half the RPM budget planned 20 s ago, and no tokens to speak of.
    const rpm = 600;
    const busy: DispatchLedger = {
      buckets: { [String(nowMs / 1000 - 20)]: 10 },
      requests: { [String(nowMs / 1000 - 20)]: rpm * LIGHT_WINDOW_SHARE },
    };
    const light: DispatchLedger = {
      buckets: { [String(nowMs / 1000 - 20)]: 10 },
      requests: { [String(nowMs / 1000 - 20)]: rpm * LIGHT_WINDOW_SHARE - 1 },
    };

    expect(lateSendNeedsSlot(busy, nowMs, 10, { ...quota, rpm }, 1)).toBe(false);
    expect(lateSendNeedsSlot(busy, nowMs, 10, { ...quota, rpm }, 1, true)).toBe(true);
    expect(lateSendNeedsSlot(light, nowMs, 10, { ...quota, rpm }, 1, true)).toBe(false);
  });

  it('ignores reservations no planning window around the send can reach', () => {
    expect(lateSendNeedsSlot(at(-(61 + PLAN_SLACK_SECONDS), budget), nowMs, 1000, quota, 1)).toBe(false);
    expect(lateSendNeedsSlot(at(61 + PLAN_SLACK_SECONDS, budget), nowMs, 1000, quota, 1)).toBe(false);
    expect(lateSendNeedsSlot(at(60 + PLAN_SLACK_SECONDS, budget), nowMs, 1000, quota, 1)).toBe(true);
  });
});

describe('job plans', () => {
  const quota = { tpm: 100_000, rpm: 600 };
  const nowMs = 1_700_000_000_000;

  it('gives back exactly what a cancelled job had planned for the seconds ahead', () => {
    const other = planDispatches({ buckets: {} }, [500, 500], nowMs, quota, 0.98);
    const tokens = Array.from({ length: 50 }, (_, i) => 100 + i);
    const job = planDispatches(other.ledger, tokens, nowMs, quota, 0.98);
    const plan = addToJobPlan({}, job.scheduleMs, tokens, nowMs);

    const released = releaseJobPlan(job.ledger, plan, nowMs);

    // What stays: the other job, and this job's items of the current second (they may be out).
    const nowSec = String(nowMs / 1000);
    const inNowSecond = job.scheduleMs.filter((at) => at === nowMs).length;
    const total = (m: Record<string, number> = {}) => Object.values(m).reduce((a, b) => a + b, 0);
    expect(total(released.requests)).toBe(2 + inNowSecond);
    expect(released.requests?.[nowSec]).toBe(2 + inNowSecond);
    expect(total(released.buckets)).toBe(1000 + tokens.slice(0, inNowSecond).reduce((a, b) => a + b, 0));
    // A job planned next starts in the next second, not behind the cancelled one.
    const next = planDispatches(released, [10], nowMs + 1000, quota, 0.98);
    expect(next.scheduleMs[0]).toBeLessThanOrEqual(nowMs + 2000);
  });

  it('drops seconds long past from a job plan as it grows', () => {
    const plan = addToJobPlan({}, [nowMs], [10], nowMs);

    const later = addToJobPlan(plan, [nowMs + 120_000], [20], nowMs + 120_000);

    expect(later).toEqual({ [String(nowMs / 1000 + 120)]: [1, 20] });
  });

  it('takes one item back from a job plan, and leaves a plan without that second as it is', () => {
    const plan = addToJobPlan({}, [nowMs, nowMs, nowMs + 5000], [10, 20, 30], nowMs);

    expect(takeFromJobPlan(plan, nowMs + 300, 20)).toEqual({
      [String(nowMs / 1000)]: [1, 10],
      [String(nowMs / 1000 + 5)]: [1, 30],
    });
    expect(takeFromJobPlan(plan, nowMs + 60_000, 20)).toBe(plan);
  });
});
