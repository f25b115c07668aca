import { describe, expect, it } from 'vitest';
import { reserveForJob } from '../../../functions/core/job-plan.js';
import { PLAN_SLACK_SECONDS } from '../../../functions/core/rate.js';
import {
  SPEND_NOTICE_START,
  type SpendLedger,
  type SpendLimit,
  spendGate,
  spendNotice,
} from '../../../functions/core/spend-pace.js';

const QUOTA = { rpm: 6000, tpm: 100_000_000 };
const T0 = 1_800_000_000_000;

/** The most any window [t, t + windowMs) holds, each send `lateMs` after its plan at most. */
function busiestWindow(sends: Array<{ atMs: number; usd: number }>, windowMs: number): number {
  const sorted = [...sends].sort((a, b) => a.atMs - b.atMs);
  let best = 0;
  let end = 0;
  let sum = 0;
  for (let start = 0; start < sorted.length; start++) {
    while (end < sorted.length && sorted[end]!.atMs < sorted[start]!.atMs + windowMs)
      sum += sorted[end++]!.usd;
    best = Math.max(best, sum);
    sum -= sorted[start]!.usd;
  }
  return best;
}

/** Plans `costs` in pages of `page` from `T0`, each page planned where the clock stands. */
function planAll(costs: number[], limit: SpendLimit, page: number) {
  let model = { buckets: {} } as Parameters<typeof reserveForJob>[0];
  let spend: SpendLedger = { buckets: {} };
  const sends: Array<{ atMs: number; usd: number }> = [];
  let held: number | undefined;
  for (let from = 0; from < costs.length; from += page) {
    const chunk = costs.slice(from, from + page);
    const gate = spendGate(spend, limit, chunk, T0);
    const planned = reserveForJob(
      model,
      undefined,
      chunk.map(() => 100),
      T0,
      QUOTA,
      1,
      { gate },
    );
    model = planned.ledger;
    spend = gate.ledger();
    held = gate.heldUntilSec() ?? held;
    for (const [n, atMs] of planned.scheduleMs.entries()) sends.push({ atMs, usd: chunk[n]! });
  }
  return { sends, held };
}

describe('spend pacing on the dispatch plan', () => {
  const limit: SpendLimit = { limitUsd: 1, windowSeconds: 10, headroom: 1 };

  it('keeps every rolling window within the limit, even with sends up to the slack late', () => {
    // Arrange: 300 items of 2-5 cents, $10 in all: ten windows' worth.
    const costs = Array.from({ length: 300 }, (_, n) => 0.02 + (n % 4) * 0.01);
    // Act
    const { sends, held } = planAll(costs, limit, 40);
    // Assert: on time, and each send late by any amount up to the slack, no 10 s holds over $1.
    expect(sends).toHaveLength(300);
    expect(busiestWindow(sends, 10_000)).toBeLessThanOrEqual(1 + 1e-9);
    const late = sends.map((s, n) => ({
      atMs: s.atMs + ((n * 7919) % (PLAN_SLACK_SECONDS * 1000)),
      usd: s.usd,
    }));
    expect(busiestWindow(late, 10_000)).toBeLessThanOrEqual(1 + 1e-9);
    expect(held).toBeGreaterThan(T0 / 1000);
  });

  it('does not go slower than the limit allows: $10 at $1 per 16 s of plan window is done within 170 s', () => {
    const costs = Array.from({ length: 200 }, () => 0.05);
    const { sends } = planAll(costs, limit, 500);
    const last = Math.max(...sends.map((s) => s.atMs));
    expect(last - T0).toBeLessThan(170_000);
  });

  it('holds nothing back when the limit is far away', () => {
    const gate = spendGate({ buckets: {} }, { ...limit, limitUsd: 1000 }, [0.01, 0.01], T0);
    reserveForJob({ buckets: {} }, undefined, [10, 10], T0, QUOTA, 1, { gate });
    expect(gate.heldUntilSec()).toBeUndefined();
  });

  it('counts what other jobs and models planned: a full window holds a new item back', () => {
    const second = Math.floor(T0 / 1000);
    const full: SpendLedger = { buckets: { [String(second)]: 1 } };
    const gate = spendGate(full, limit, [0.1], T0);
    const planned = reserveForJob({ buckets: {} }, undefined, [10], T0, QUOTA, 1, { gate });
    // The window after the $1 second must have passed: 10 + 1 + slack seconds of plan window.
    expect(planned.scheduleMs[0]! - T0).toBeGreaterThanOrEqual((10 + PLAN_SLACK_SECONDS) * 1000);
  });

  it('places an item costlier than the whole limit alone, in an empty window', () => {
    const gate = spendGate({ buckets: {} }, limit, [0.5, 3, 0.5], T0);
    const planned = reserveForJob({ buckets: {} }, undefined, [1, 1, 1], T0, QUOTA, 1, { gate });
    const [a, big, c] = planned.scheduleMs as [number, number, number];
    expect(big - a).toBeGreaterThanOrEqual(10_000);
    expect(c - big).toBeGreaterThanOrEqual(10_000);
  });

  it('says so in a notice that names the limit and its window', () => {
    const notice = spendNotice({ limitUsd: 10, windowSeconds: 600, headroom: 0.98 }, T0);
    expect(notice.startsWith(SPEND_NOTICE_START)).toBe(true);
    expect(notice).toContain('$10 per 10 minutes');
  });
});
