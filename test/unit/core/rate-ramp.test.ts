import { describe, expect, it } from 'vitest';
import { queueRateLimits } from '../../../functions/core/queue-rate.js';
import { type DispatchRamp, rampCapacity } from '../../../functions/core/ramp.js';
import { planDispatches, REPLAN_AFTER_MS } from '../../../functions/core/rate.js';
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
 * When the local strict Cloud Tasks sends tasks scheduled at `plannedMs` (one queue, its rate and
 * documented burst, its ramp and token bucket as queue.ts drives them), in simulated 10 ms steps.
 */
function dispatchTimes(plannedMs: number[], rpm: number): number[] {
  const { maxDispatchesPerSecond: rate } = queueRateLimits({ rpm }, 0.98);
  const burst = deriveBurst('documented', rate)!;
  const enforced = new EnforcedRate(
    () => STRICT_DISPATCH_RAMP,
    () => false,
  );
  let now = Math.min(...plannedMs);
  const bucket = new TokenBucket(rate, burst, now);
  const order = plannedMs.map((at, i) => ({ at, i })).sort((a, b) => a.at - b.at);
  const sent: number[] = [];
  let next = 0;
  while (next < order.length) {
    while (next < order.length && order[next]!.at <= now) {
      enforced.beforeDispatch(now);
      const share = enforced.share(now);
      bucket.reconfigure(rate * share, Math.max(1, burst * share), now);
      if (!bucket.tryTake(now)) break;
      enforced.dispatched(now);
      sent[order[next]!.i] = now;
      next++;
    }
    now += 10;
  }
  return sent;
}

const lateness = (planned: number[], sent: number[]) => Math.max(...planned.map((p, i) => sent[i]! - p));

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

    const withRamp = planDispatches(
      { buckets: {} },
      tokens,
      T0,
      quota,
      0.98,
      undefined,
      undefined,
      RAMP,
    ).scheduleMs;
    const without = planDispatches({ buckets: {} }, tokens, T0, quota, 0.98).scheduleMs;

    const late = lateness(withRamp, dispatchTimes(withRamp, 600));
    expect(late).toBeLessThanOrEqual(REPLAN_AFTER_MS);
    // Without the ramp in the plan, the queue falls behind it by far more: those items are planned again.
    expect(lateness(without, dispatchTimes(without, 600))).toBeGreaterThan(REPLAN_AFTER_MS * 2);
    // And the plan is no slower than the queue: it ends within a second or two of what it sends.
    expect(withRamp.at(-1)! - Math.max(...dispatchTimes(without, 600))).toBeLessThan(2000);
  });

  it('goes on with a ramp begun by an earlier plan, and gives a queue busy within a minute no new one', () => {
    const quota = { rpm: 600, tpm: 10_000_000 };
    const first = planDispatches(
      { buckets: {} },
      Array(20).fill(10),
      T0,
      quota,
      0.98,
      undefined,
      undefined,
      RAMP,
    );
    // Five seconds on, another job joins the ramp where it stands.
    const second = planDispatches(
      first.ledger,
      Array(200).fill(10),
      T0 + 5000,
      quota,
      0.98,
      undefined,
      undefined,
      RAMP,
    );
    const all = [...first.scheduleMs, ...second.scheduleMs];

    expect(second.ledger.rampFromSec).toBe(first.ledger.rampFromSec);
    expect(lateness(all, dispatchTimes(all, 600))).toBeLessThanOrEqual(REPLAN_AFTER_MS);
  });
});
