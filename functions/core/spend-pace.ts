/**
 * Spend pacing, pure: the project's spend limit per rolling window (Gemini's spend-based rate limit:
 * $10 / $50 / $200 per rolling 10 minutes for Tier 1 / 2 / 3, a 429 RESOURCE_EXHAUSTED beyond it;
 * the Gemini API rate-limits page, "Spend-based rate limits") as a fourth dimension of the dispatch
 * plan, beside requests and tokens (`core/rate.ts`).
 *
 * The spend ledger holds, per epoch second, the estimated cost of every item planned to be sent in
 * it, across every job and model of the deployment (one project, one limit). An item may be placed
 * in a second only while no window of `windowSeconds + 1 + PLAN_SLACK_SECONDS` seconds that contains
 * it would hold more than `spendPer10MinUsd × headroom` with it, so a send up to the plan's slack
 * late still keeps every rolling window within the limit — the same rule the token plan keeps for
 * the minute. An item costlier than the whole limit is placed alone in an empty window (Gemini will
 * refuse it, and the worker records why).
 *
 * What counts: realtime and Flex calls, at the tier's price (Flex is "counted against the ordinary
 * rate limits", the Flex section of the Gemini API optimization page). Batch items never reach the
 * ledger: the Batch API has limits of its own (enqueued tokens per model); the rate-limits page does
 * not say whether the spend limit covers batches, so this is a reading, not a documented fact.
 */
import { PLAN_SLACK_SECONDS, type PlanGate } from './rate.js';

/** The deployment's spend limit as the plan reads it (`infra/quotas.json`). */
export interface SpendLimit {
  /** Most that may be spent in any rolling window (`spendPer10MinUsd`). */
  limitUsd: number;
  /** The window's length: 600 s upstream (`spendPacing.windowSeconds`; tests shorten it). */
  windowSeconds: number;
  /** Share of the limit the plan uses (`headroom`). */
  headroom: number;
}

/** The project's spend plan: epoch second → estimated USD planned to be sent in that second. */
export interface SpendLedger {
  buckets: Record<string, number>;
}

/** A gate on the spend ledger for one page of items, and what it planned. */
export interface SpendGate extends PlanGate {
  /** The ledger with the page's placements, seconds long past dropped. */
  ledger(): SpendLedger;
  /** The latest second the spend limit alone made an item wait for (undefined: it held none back). */
  heldUntilSec(): number | undefined;
}

/** Seconds a window of the plan spans: the limit's window, the second it starts in, the slack. */
export function spendWindowBuckets(limit: Pick<SpendLimit, 'windowSeconds'>): number {
  return Math.ceil(limit.windowSeconds) + 1 + PLAN_SLACK_SECONDS;
}

/**
 * A gate over `ledger` for items costing `costsUsd[i]` (in page order), planned from `nowMs`. Each
 * check is O(window): the largest window sum containing the second, with a sliding sum.
 */
export function spendGate(
  ledger: SpendLedger,
  limit: SpendLimit,
  costsUsd: readonly number[],
  nowMs: number,
): SpendGate {
  const span = spendWindowBuckets(limit);
  const budget = limit.limitUsd * limit.headroom;
  const nowSec = Math.floor(nowMs / 1000);
  const keep = (second: number) => second > nowSec - span;
  const buckets = new Map<number, number>();
  for (const [key, value] of Object.entries(ledger.buckets)) {
    const second = Number(key);
    if (keep(second) && value > 0) buckets.set(second, value);
  }
  const at = (s: number) => buckets.get(s) ?? 0;
  /** The fullest window of `span` seconds that holds second `s`. */
  const busiestAround = (s: number) => {
    let sum = 0;
    for (let t = s - span + 1; t <= s; t++) sum += at(t);
    let most = sum;
    for (let end = s + 1; end < s + span; end++) {
      sum += at(end) - at(end - span);
      most = Math.max(most, sum);
    }
    return most;
  };
  let held: number | undefined;
  return {
    fits(second, index) {
      const cost = costsUsd[index] ?? 0;
      const busiest = busiestAround(second);
      // A tiny tolerance: sums of float prices must not refuse an item that fits exactly.
      const ok = cost > budget ? busiest === 0 : busiest + cost <= budget + 1e-12;
      if (!ok) held = Math.max(held ?? second, second + 1);
      return ok;
    },
    take(second, index) {
      buckets.set(second, at(second) + (costsUsd[index] ?? 0));
    },
    ledger() {
      const out: Record<string, number> = {};
      for (const [second, value] of buckets) if (keep(second) && value > 0) out[String(second)] = value;
      return { buckets: out };
    },
    heldUntilSec: () => held,
  };
}

/** How a spend-pacing notice starts (to tell it from the job's other notices). */
export const SPEND_NOTICE_START = 'Paced: ';

/** The job's notice while the spend limit holds its items back. */
export function spendNotice(limit: SpendLimit, untilMs: number): string {
  const minutes = limit.windowSeconds / 60;
  const window = Number.isInteger(minutes) ? `${minutes} minutes` : `${limit.windowSeconds} s`;
  return `${SPEND_NOTICE_START}the project's spend limit ($${limit.limitUsd} per ${window}) holds items back; planned through ${new Date(untilMs).toISOString()}.`;
}

/**
 * The least time the spend limit allows for `totalUsd` of realtime calls, seconds: the first
 * window's worth at once, each further one a window later (a dry run's `quotaSeconds`).
 */
export function spendSeconds(totalUsd: number, limit: SpendLimit): number {
  const windows = totalUsd / (limit.limitUsd * limit.headroom);
  return Math.max(0, windows - 1) * limit.windowSeconds;
}
