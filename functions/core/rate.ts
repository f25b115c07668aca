import type { AdaptiveRate } from './adaptive-rate.js';
import { queueCapacity } from './queue-capacity.js';
import type { ModelQuota } from './quotas.js';
import type { DispatchRamp } from './ramp.js';
import type { TokenRateCut } from './token-cut.js';

/** What a model's queue has been promised, per epoch second: the last minute and the future. */
export interface DispatchLedger {
  /** Epoch second → input tokens planned to be sent in that second. */
  buckets: Record<string, number>;
  /** Epoch second → requests planned to be dispatched in that second. */
  requests?: Record<string, number>;
  /** The model's token rate, lowered for a while after a TPM 429 (`core/token-cut.ts`). */
  tokenCut?: TokenRateCut;
  /** The model's adaptive request rate, where its quota has one (`core/adaptive-rate.ts`). */
  adaptive?: AdaptiveRate;
  /** With a {@link DispatchRamp}: the second the queue's current ramp began (its first planned send after idling). */
  rampFromSec?: number;
}

/**
 * A further constraint on where an item may go, beside requests and tokens (the project's spend
 * limit, `core/spend-pace.ts`): `fits` is asked for the item at `index` of the page at a second the
 * other rules allow, `take` records it placed there.
 */
export interface PlanGate {
  fits(second: number, index: number): boolean;
  take(second: number, index: number): void;
}

/**
 * How far a send may run behind its planned time without breaking the plan: the planner keeps every
 * window of 60 + this many seconds within the TPM budget, so a request sent up to this late still
 * shares no 60-second window with more than the budget.
 */
export const PLAN_SLACK_SECONDS = 5;

/** The pacing window of the token plan (see {@link planDispatches}). */
export const PACE_SECONDS = 10;

/**
 * A delivery this much later than its plan is planned again (see the worker). Less than the slack:
 * the rest covers the time between that check and the request reaching Gemini.
 */
export const REPLAN_AFTER_MS = 4000;

/**
 * A late send goes ahead without a new plan while every planning window around it stays below this
 * share of the TPM budget with it: the ledger then has room for it and for other such sends, and
 * light, request-bound runs never contend for the ledger. Above it, the send takes a new slot.
 */
export const LIGHT_WINDOW_SHARE = 0.5;

/**
 * How far ahead a job's items are planned and their tasks created; the rest wait in Firestore and
 * are planned as time moves on. This bounds the ledger (a Firestore document, at most 1 MiB) to
 * about 11 minutes of seconds (the last one and the next ten) however big the backlog, and keeps
 * cancel cheap.
 */
export const PLAN_AHEAD_MS = 10 * 60_000;

/**
 * Buckets a window of 60 + slack seconds can touch: any window (t − 60 − slack, t] lies within
 * seconds s − 60 − slack … s.
 */
export const WINDOW_BUCKETS = 61 + PLAN_SLACK_SECONDS;

/**
 * Plans when each item is sent, across every job sharing the model's ledger:
 * - no more requests in a second than the model's queue dispatches in it ({@link queueRateLimits}),
 *   its burst included when it has been idle for a minute, so the plan is a prediction of when the
 *   queue sends each item, not only a lower bound;
 * - no window of 60 + {@link PLAN_SLACK_SECONDS} seconds carries more than `tpm × headroom` input
 *   tokens, so sends a little behind their plan still keep every minute within TPM;
 * - no {@link PACE_SECONDS} seconds carry more than `PACE_SECONDS + 1` 60ths of that token budget
 *   (and one item more), as the queue holds requests to its rate plus one second's burst: the first minute is paced like
 *   every other, on tokens as on requests. Gemini documents its limits as counts per minute but not
 *   how it measures them, and a limiter that checks shorter windows refuses a first-second burst
 *   that a whole-minute count allows; pacing is the one rule that is safe under both.
 * Items are placed first come, first served, each in the earliest second at or after the last
 * reservation that has room on both counts; items that fit in the current second get `now`, those of
 * a later second are spread evenly across it, as the queue would send them. An item
 * larger than the whole token budget is placed alone in an empty window (Gemini will refuse it, and
 * the worker records why). `release` first takes back one earlier reservation (an item being planned
 * again that never reached Gemini). Planning stops before the first item that would go after
 * `untilMs`: `scheduleMs` then covers only a prefix of `tokens`, and the rest is planned later.
 * `alone`: each item goes in a task of its own (a replan, a reconciler's task, a repair), which the
 * queue dispatches as one task of k items' worth, so it takes k of its second's requests.
 */
export function planDispatches(
  ledger: DispatchLedger,
  tokens: readonly number[],
  nowMs: number,
  quota: Pick<ModelQuota, 'tpm' | 'rpm'>,
  headroom: number,
  release?: { atMs: number; tokens: number },
  untilMs = Number.POSITIVE_INFINITY,
  ramp?: DispatchRamp | false,
  gate?: PlanGate,
  itemsPerTask = 1,
  alone = false,
): { scheduleMs: number[]; ledger: DispatchLedger } {
  const budget = Math.max(1, Math.floor(quota.tpm * headroom));
  const nowSec = Math.floor(nowMs / 1000);
  const keep = (second: number) => second > nowSec - WINDOW_BUCKETS;
  const { buckets, requests, latest } = loadSeconds(ledger, keep);
  let cursor = Math.max(nowSec, latest);
  const queue = queueCapacity(ledger.rampFromSec, requests, nowMs, quota, headroom, itemsPerTask, ramp);
  // An item in a task of its own takes one dispatch, which the queue's rate counts as a whole task's
  // worth of items: it holds that many of its second's requests.
  const weight = (second: number) => (alone ? queue.taskWorth(second) : 1);
  if (release) releaseSlot(buckets, requests, release);
  let sum = 0;
  for (let s = cursor - WINDOW_BUCKETS + 1; s <= cursor; s++) sum += buckets.get(s) ?? 0;
  // An item starts while its pacing windows are below their share, so a window holds its share and
  // at most one item more: items large against the share lose no throughput to packing.
  const paceShare = Math.max(1, Math.floor((budget * (PACE_SECONDS + 1)) / 60));
  const paceTakes = (second: number) => pacedTokens(buckets, second) < paceShare;
  const scheduleMs: number[] = [];
  // In a second whose tasks carry more than k items (a ramping queue's), this call's items start a
  // task of their own: another call's part-filled task is another job's, not theirs to fill.
  const opened = new Set<number>();
  const taken = (second: number) => {
    const k = requests.get(second) ?? 0;
    return opened.has(second) ? k : queue.wholeTasks(second, k);
  };
  for (const [i, w] of tokens.entries()) {
    while (
      (w <= budget ? sum + w > budget : sum > 0) ||
      taken(cursor) + weight(cursor) > queue.capacity(cursor) ||
      !paceTakes(cursor) ||
      (gate !== undefined && !gate.fits(cursor, i))
    ) {
      sum -= buckets.get(cursor - WINDOW_BUCKETS + 1) ?? 0;
      cursor++;
      sum += buckets.get(cursor) ?? 0;
      if (cursor * 1000 > untilMs) break;
    }
    if (cursor * 1000 > untilMs) break;
    queue.startRamp(cursor);
    const k = taken(cursor);
    opened.add(cursor);
    buckets.set(cursor, (buckets.get(cursor) ?? 0) + w);
    requests.set(cursor, k + weight(cursor));
    gate?.take(cursor, i);
    sum += w;
    scheduleMs.push(cursor === nowSec ? nowMs : queue.sendAt(cursor, k));
  }
  const rampFrom = queue.rampFrom();
  return {
    scheduleMs,
    ledger: {
      buckets: recordOf(buckets, keep),
      requests: recordOf(requests, keep),
      ...(ramp && rampFrom !== undefined ? { rampFromSec: rampFrom } : {}),
    },
  };
}

/** The ledger's seconds still kept (`keep`) with anything planned, as maps, and the latest of them. */
function loadSeconds(ledger: DispatchLedger, keep: (second: number) => boolean) {
  const buckets = new Map<number, number>();
  const requests = new Map<number, number>();
  let latest = Number.NEGATIVE_INFINITY;
  for (const [key, value] of Object.entries(ledger.buckets)) {
    const second = Number(key);
    if (keep(second) && value > 0) {
      buckets.set(second, value);
      latest = Math.max(latest, second);
    }
  }
  for (const [key, value] of Object.entries(ledger.requests ?? {})) {
    const second = Number(key);
    if (keep(second) && value > 0) {
      requests.set(second, value);
      latest = Math.max(latest, second);
    }
  }
  return { buckets, requests, latest };
}

/** Takes back one earlier reservation at `release.atMs` (an item planned again that never reached Gemini). */
function releaseSlot(
  buckets: Map<number, number>,
  requests: Map<number, number>,
  release: { atMs: number; tokens: number },
): void {
  const second = Math.floor(release.atMs / 1000);
  if (buckets.has(second)) buckets.set(second, Math.max(0, buckets.get(second)! - release.tokens));
  if (requests.has(second)) requests.set(second, Math.max(0, requests.get(second)! - 1));
}

/**
 * Tokens in the pacing window ending at `second`, and in the ones after it that a plan there would
 * join: the most any of them holds.
 */
function pacedTokens(buckets: ReadonlyMap<number, number>, second: number): number {
  let most = 0;
  for (let end = second; end < second + PACE_SECONDS; end++) {
    let window = 0;
    for (let s = end - PACE_SECONDS + 1; s <= end; s++) window += buckets.get(s) ?? 0;
    most = Math.max(most, window);
  }
  return most;
}

/** A map of seconds as the ledger stores it: the kept seconds with anything in them, keyed by string. */
function recordOf(map: ReadonlyMap<number, number>, keep: (second: number) => boolean) {
  return Object.fromEntries([...map].filter(([s, v]) => keep(s) && v > 0).map(([s, v]) => [String(s), v]));
}

/**
 * Whether a send of `tokens` at `atMs`, far behind its plan, needs a new slot on the ledger: true when
 * some planning window containing that second would hold more than {@link LIGHT_WINDOW_SHARE} of the
 * TPM budget with it, or, with `requests` (a send the queue's rate does not bound: one of a task
 * carrying more items than the queue's k), more than that share of the RPM budget.
 */
export function lateSendNeedsSlot(
  ledger: DispatchLedger,
  atMs: number,
  tokens: number,
  quota: Pick<ModelQuota, 'tpm' | 'rpm'>,
  headroom: number,
  requests = false,
): boolean {
  const at = Math.floor(atMs / 1000);
  const crowded = (seconds: Record<string, number>, amount: number, budget: number) =>
    busiestWindow(seconds, at) + amount > Math.floor(budget * headroom) * LIGHT_WINDOW_SHARE;
  return (
    crowded(ledger.buckets, tokens, quota.tpm) || (requests && crowded(ledger.requests ?? {}, 1, quota.rpm))
  );
}

/** The most any planning window containing second `at` holds of `seconds` (epoch second → amount). */
function busiestWindow(seconds: Record<string, number>, at: number): number {
  const bucket = (s: number) => seconds[String(s)] ?? 0;
  let sum = 0;
  for (let s = at - WINDOW_BUCKETS + 1; s <= at; s++) sum += bucket(s);
  let busiest = sum;
  for (let s = at + 1; s < at + WINDOW_BUCKETS; s++) {
    sum += bucket(s) - bucket(s - WINDOW_BUCKETS);
    busiest = Math.max(busiest, sum);
  }
  return busiest;
}
