import { describe, expect, it } from 'vitest';
import { queueRateLimits } from '../../../functions/core/queue-rate.js';
import { type DispatchRamp, rampCapacity } from '../../../functions/core/ramp.js';
import { planDispatches, REPLAN_AFTER_MS } from '../../../functions/core/rate.js';
import { groupTasks } from '../../../functions/core/task-groups.js';
import { EnforcedRate } from '../../../infra/local/cloud-tasks/enforced-rate.js';
import { deriveBurst, STRICT_DISPATCH_RAMP } from '../../../infra/local/cloud-tasks/profile.js';
import { TokenBucket } from '../../../infra/local/cloud-tasks/token-bucket.js';

// A cold queue ramps up (the local strict cloud: from 20% of its rate over 30 s): a plan that
// assumes the whole rate at once runs behind it, and its late items are planned again. With the
// ramp as a setting, the plan follows what the queue will send.

const RAMP: DispatchRamp = {
  startShare: STRICT_DISPATCH_RAMP.startShare,
  seconds: STRICT_DISPATCH_RAMP.durationMs / 1000,
  idleSeconds: STRICT_DISPATCH_RAMP.idleAfterMs / 1000,
};
const T0 = Date.parse('2024-07-01T19:00:00.250Z');

/**
 * When the local strict Cloud Tasks sends each item planned at `plannedMs` (one queue, its rate and
 * documented burst, its ramp and token bucket as queue.ts drives them), in simulated 10 ms steps,
 * the items cut into tasks as the task queue cuts them (`cap`: items a task while it ramps).
 */
function dispatchTimes(
  plannedMs: number[],
  rpm: number,
  cap = 1,
  jobs: number[] = [plannedMs.length],
): number[] {
  const { maxDispatchesPerSecond: rate } = queueRateLimits({ rpm }, 0.98);
  const burst = deriveBurst('documented', rate)!;
  const enforced = new EnforcedRate(
    () => STRICT_DISPATCH_RAMP,
    () => false,
  );
  // Each job's items (`jobs`: how many each, in order) make their own tasks.
  const items = plannedMs.map((at, i) => ({ itemId: String(i), index: i, plannedMs: at }));
  const tasks = jobs
    .flatMap((n, j) => {
      const from = jobs.slice(0, j).reduce((a, b) => a + b, 0);
      return groupTasks(items.slice(from, from + n), 1, cap);
    })
    .sort((a, b) => a[0]!.plannedMs - b[0]!.plannedMs);
  let now = Math.min(...plannedMs);
  const bucket = new TokenBucket(rate, burst, now);
  const sent: number[] = [];
  let next = 0;
  while (next < tasks.length) {
    while (next < tasks.length && tasks[next]![0]!.plannedMs <= now) {
      enforced.beforeDispatch(now);
      const share = enforced.share(now);
      bucket.reconfigure(rate * share, Math.max(1, burst * share), now);
      if (!bucket.tryTake(now)) break;
      enforced.dispatched(now);
      for (const item of tasks[next]!) sent[item.index] = now;
      next++;
    }
    now += 10;
  }
  return sent;
}

const lateness = (planned: number[], sent: number[]) => Math.max(...planned.map((p, i) => sent[i]! - p));

/** The most items sent in any 60 s window. */
function busiestMinute(sent: number[]): number {
  const sorted = [...sent].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= 60_000) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/** `planDispatches` of `tokens` at `atMs` (T0) on `ledger` (empty) for a queue ramping as `ramp`. */
function planRamped(
  tokens: number[],
  quota: { rpm: number; tpm: number },
  ramp: DispatchRamp = RAMP,
  atMs = T0,
  ledger: Parameters<typeof planDispatches>[0] = { buckets: {} },
) {
  return planDispatches(ledger, tokens, atMs, quota, 0.98, undefined, undefined, ramp);
}

describe('planDispatches: a cold queue ramping up', () => {
  it('counts what a ramp sends: one at once, then the rising rate, then the whole rate', () => {
    const rate = 10;
    const sum = (from: number, to: number) => {
      let n = 0;
      for (let k = from; k < to; k++) n += rampCapacity(k, rate, RAMP);
      return n;
    };

    expect(rampCapacity(0, rate, RAMP)).toBe(1);
    // 30 s from 20% to 100%: on average 60% of the rate.
    expect(sum(0, 31)).toBe(1 + 0.6 * rate * 30);
    expect(rampCapacity(40, rate, RAMP)).toBe(rate);
  });

  it('plans 660 prompts at 600 RPM so the strict queue sends none more than the replanning threshold late', () => {
    const tokens = Array(660).fill(10);
    const quota = { rpm: 600, tpm: 10_000_000 };
    // One item a task while it ramps: the plan follows the ramp's rate.
    const oneEach = { ...RAMP, itemsPerTask: 1 };

    const withRamp = planRamped(tokens, quota, oneEach).scheduleMs;
    const without = planDispatches({ buckets: {} }, tokens, T0, quota, 0.98).scheduleMs;

    const late = lateness(withRamp, dispatchTimes(withRamp, 600));
    expect(late).toBeLessThanOrEqual(REPLAN_AFTER_MS);
    // Without the ramp in the plan, the queue falls behind it by far more: those items are planned again.
    expect(lateness(without, dispatchTimes(without, 600))).toBeGreaterThan(REPLAN_AFTER_MS * 2);
    // And the plan is no slower than the queue: it ends within a second or two of what it sends.
    expect(withRamp.at(-1)! - Math.max(...dispatchTimes(without, 600))).toBeLessThan(2000);
  });

  it('packs a ramping queue’s tasks so its items keep the steady rate: no time lost, none late, no minute over', () => {
    const tokens = Array(660).fill(10);
    const quota = { rpm: 600, tpm: 10_000_000 };
    const cap = Math.ceil(1 / RAMP.startShare);

    const packed = planRamped(tokens, quota).scheduleMs;
    const oneEach = planRamped(tokens, quota, { ...RAMP, itemsPerTask: 1 }).scheduleMs;
    const sent = dispatchTimes(packed, 600, cap);
    const tasks = groupTasks(
      packed.map((at, i) => ({ itemId: String(i), index: i, plannedMs: at })),
      1,
      cap,
    );

    // The queue sends every task within the replanning threshold of its plan ...
    expect(lateness(packed, sent)).toBeLessThanOrEqual(REPLAN_AFTER_MS);
    // ... tasks carry at most the cap, and several while it ramps ...
    expect(Math.max(...tasks.map((t) => t.length))).toBe(cap);
    // ... so the last item goes about when the steady rate sends it (660 / 9.6 a second, 68.5 s),
    // where one item a task ends 12 s later (the 40% of 30 s the ramp withholds).
    const { maxDispatchesPerSecond: rate } = queueRateLimits(quota, 0.98);
    expect(Math.max(...sent) - T0).toBeLessThan((660 / rate) * 1000 + 2000);
    expect(oneEach.at(-1)! - packed.at(-1)!).toBeGreaterThan(10_000);
    // ... and no minute carries more requests than the budget.
    expect(busiestMinute(sent)).toBeLessThanOrEqual(Math.floor(600 * 0.98));
  });

  it('goes on with a ramp begun by an earlier plan, and gives a queue busy within a minute no new one', () => {
    const quota = { rpm: 600, tpm: 10_000_000 };
    const first = planRamped(Array(20).fill(10), quota);
    // Five seconds on, another job joins the ramp where it stands.
    const second = planRamped(Array(200).fill(10), quota, RAMP, T0 + 5000, first.ledger);
    const all = [...first.scheduleMs, ...second.scheduleMs];

    expect(second.ledger.rampFromSec).toBe(first.ledger.rampFromSec);
    const cap = Math.ceil(1 / RAMP.startShare);
    expect(lateness(all, dispatchTimes(all, 600, cap, [20, 200]))).toBeLessThanOrEqual(REPLAN_AFTER_MS);
  });

  it('starts each job on a task of its own in a packed second, so many small jobs keep up with the ramp', () => {
    // 60 jobs of 3 prompts submitted one after another on a cold queue: each plan leaves a task part
    // filled, which the next job's items cannot join (a task carries one job's items).
    const quota = { rpm: 600, tpm: 10_000_000 };
    const cap = Math.ceil(1 / RAMP.startShare);
    let ledger: Parameters<typeof planDispatches>[0] = { buckets: {} };
    const all: number[] = [];
    for (let job = 0; job < 60; job++) {
      const planned = planRamped([10, 10, 10], quota, RAMP, T0, ledger);
      ledger = planned.ledger;
      all.push(...planned.scheduleMs);
    }

    const sent = dispatchTimes(all, 600, cap, Array(60).fill(3));

    expect(lateness(all, sent)).toBeLessThanOrEqual(REPLAN_AFTER_MS);
    expect(busiestMinute(sent)).toBeLessThanOrEqual(Math.floor(600 * 0.98));
  });

  it('counts what the ramp accrues over the rest of the second it begins in: a small cold job goes in about its steady time', () => {
    // 100 prompts at 4,000 RPM (64 a second) on a cold queue, planned at the start of a second.
    const quota = { rpm: 4000, tpm: 10_000_000 };
    const cap = Math.ceil(1 / RAMP.startShare);
    const atSecond = Date.parse('2024-07-01T19:00:00.000Z');

    const plan = planRamped(Array(100).fill(10), quota, RAMP, atSecond).scheduleMs;
    const sent = dispatchTimes(plan, 4000, cap);

    // The first second carries what the ramp sends in it (13 tasks of up to 5), not one task ...
    expect(plan.filter((ms) => ms < atSecond + 1000).length).toBeGreaterThan(50);
    // ... which the strict queue sends on time, and the last item goes within 2 s, as the steady rate sends 100.
    expect(lateness(plan, sent)).toBeLessThanOrEqual(REPLAN_AFTER_MS);
    expect(Math.max(...sent) - atSecond).toBeLessThan(2000);
  });
});
