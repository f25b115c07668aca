import { adaptiveLimits } from './adaptive-rate.js';
import type { ModelQuota } from './quotas.js';
import type { DispatchRamp } from './ramp.js';
import { type DispatchLedger, type PlanGate, planDispatches, WINDOW_BUCKETS } from './rate.js';
import { withTokenCut } from './token-cut.js';

/**
 * A job's share of its model's dispatch ledger (`core/rate.ts`): the seconds its items hold, kept
 * beside the ledger so a cancelled job gives back what it still holds ahead, and the reservation
 * that plans a job's items and updates both in one step (what the ledger store does in its
 * transaction).
 */

/** One job's reservations on its model's ledger: epoch second → [requests, input tokens]. */
export type JobPlan = Record<string, [number, number]>;

/** Adds items planned at `scheduleMs` with `tokens` to a job's plan, dropping seconds long past. */
export function addToJobPlan(
  plan: JobPlan,
  scheduleMs: readonly number[],
  tokens: readonly number[],
  nowMs: number,
): JobPlan {
  const next: JobPlan = {};
  const horizon = Math.floor(nowMs / 1000) - WINDOW_BUCKETS;
  for (const [key, value] of Object.entries(plan)) if (Number(key) > horizon) next[key] = [...value];
  scheduleMs.forEach((at, i) => {
    const key = String(Math.floor(at / 1000));
    const [count, sum] = next[key] ?? [0, 0];
    next[key] = [count + 1, sum + (tokens[i] ?? 0)];
  });
  return next;
}

/** Takes back one item's reservation at `atMs` from a job's plan (the item was planned again). */
export function takeFromJobPlan(plan: JobPlan, atMs: number, tokens: number): JobPlan {
  const key = String(Math.floor(atMs / 1000));
  const entry = plan[key];
  if (!entry) return plan;
  return { ...plan, [key]: [Math.max(0, entry[0] - 1), Math.max(0, entry[1] - tokens)] };
}

/** Takes a job's reservations for the seconds still ahead off the ledger (the job was cancelled). */
export function releaseJobPlan(ledger: DispatchLedger, plan: JobPlan, nowMs: number): DispatchLedger {
  const nowSec = Math.floor(nowMs / 1000);
  const buckets = { ...ledger.buckets };
  const requests = { ...(ledger.requests ?? {}) };
  for (const [key, [count, tokens]] of Object.entries(plan)) {
    if (Number(key) <= nowSec) continue;
    if (key in buckets) buckets[key] = Math.max(0, buckets[key]! - tokens);
    if (key in requests) requests[key] = Math.max(0, requests[key]! - count);
  }
  return { ...ledger, buckets, requests };
}

/**
 * {@link planDispatches}, and with a job's plan, that plan updated too: the released slot taken out,
 * the new ones added, the TPM lowered by the ledger's token cut while one holds. What
 * `LedgerStore.reserve` (platform/store/ledger.ts) does inside its transaction.
 */
export function reserveForJob(
  ledger: DispatchLedger,
  jobPlan: JobPlan | undefined,
  tokens: readonly number[],
  nowMs: number,
  quota: Pick<ModelQuota, 'tpm' | 'rpm' | 'adaptive'>,
  headroom: number,
  options: {
    release?: { atMs: number; tokens: number };
    untilMs?: number;
    ramp?: DispatchRamp | false;
    gate?: PlanGate;
    itemsPerTask?: number;
    alone?: boolean;
  } = {},
): { scheduleMs: number[]; ledger: DispatchLedger; jobPlan?: JobPlan } {
  const { release, untilMs, ramp, gate, itemsPerTask, alone } = options;
  const cut = ledger.tokenCut;
  // An adaptive model plans at its AIMD rate under the quota's ceiling (core/adaptive-rate.ts).
  const { limits, adaptive } = adaptiveLimits(quota, ledger.adaptive, ledger.requests, nowMs);
  const effective = withTokenCut(limits, cut, nowMs);
  const dispatched = planDispatches(
    ledger,
    tokens,
    nowMs,
    effective,
    headroom,
    release,
    untilMs,
    ramp,
    gate,
    itemsPerTask,
    alone,
  );
  const kept = { ...(cut ? { tokenCut: cut } : {}), ...(adaptive ? { adaptive } : {}) };
  const planned = { ...dispatched, ledger: { ...dispatched.ledger, ...kept } };
  if (!jobPlan) return planned;
  const before = release ? takeFromJobPlan(jobPlan, release.atMs, release.tokens) : jobPlan;
  return { ...planned, jobPlan: addToJobPlan(before, planned.scheduleMs, tokens, nowMs) };
}
