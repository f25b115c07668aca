/**
 * The adaptive request rate (AIMD) of a model whose request limit is not known: a Developer-API model
 * whose quota says `rpm: "auto"` (tier limits unknown), or any model on Vertex AI, whose Gemini
 * models have no fixed per-project RPM (Dynamic Shared Quota: a 429 means the shared pool is busy,
 * https://cloud.google.com/vertex-ai/generative-ai/docs/dynamic-shared-quota). There the model's
 * `rpm` (the queue's dispatch rate) is a ceiling, and the plan runs at the adaptive rate under it:
 * - additive increase: while the plan uses the rate (the last minute planned at least
 *   {@link IN_USE_SHARE} of it), it rises by `increaseRpmPerMinute` per minute;
 * - multiplicative decrease: a 429 (not a per-day one) multiplies it by `decreaseFactor`, down to
 *   `floorRpm`; 429s within `sameWindowMs` of the last decrease are the same congestion (requests
 *   already on their way at the old rate) and count once, as TCP halves once per round trip.
 * The state is kept on the model's dispatch ledger (`DispatchLedger.adaptive`, beside the TPM cut of
 * `token-cut.ts`), shared by every job and function instance of the model; it advances inside the
 * ledger's transactions. An idle minute neither raises nor lowers it: the next job starts where
 * the last one settled. Pure.
 */

/** How the adaptive rate moves (`adaptiveRate` in infra/quotas.json). */
export interface AdaptiveRateSettings {
  /** The rate a model starts at before anything is known (capped by its ceiling). */
  startRpm: number;
  /** Additive increase: requests per minute added per minute the rate is in use without a 429. */
  increaseRpmPerMinute: number;
  /** Multiplicative decrease: the share of the rate kept after a 429. */
  decreaseFactor: number;
  /** The least rate planned, however many 429s. */
  floorRpm: number;
  /** 429s this close to the last decrease count once. */
  sameWindowMs: number;
  /**
   * How far ahead an adaptive model's items are planned (and their tasks created): a decrease
   * reaches the plan only for items planned after it, so this is short.
   */
  planAheadMs: number;
}

export const DEFAULT_ADAPTIVE_RATE: AdaptiveRateSettings = {
  startRpm: 60,
  increaseRpmPerMinute: 30,
  decreaseFactor: 0.7,
  floorRpm: 6,
  sameWindowMs: 10_000,
  planAheadMs: 60_000,
};

/** The rate is "in use" when the last minute planned at least this share of it: only then it rises. */
export const IN_USE_SHARE = 0.5;

/** A model's adaptive rate as the ledger holds it. */
export interface AdaptiveRate {
  /** Requests per minute the plan runs at (under the ceiling). */
  rpm: number;
  /** When `rpm` was last advanced (epoch ms). */
  atMs: number;
  /** When the last 429 lowered it (epoch ms). */
  decreasedAtMs?: number;
}

/** The rate in force: the state's, else the start, never over the ceiling nor under the floor. */
export function adaptiveRpm(
  state: AdaptiveRate | undefined,
  ceilingRpm: number,
  settings: AdaptiveRateSettings,
): number {
  const rpm = state ? state.rpm : settings.startRpm;
  return Math.min(ceilingRpm, Math.max(settings.floorRpm, rpm));
}

/**
 * The state at `nowMs`: raised by the additive step for the time since it was last advanced when
 * `plannedLastMinute` (requests the ledger planned in the last 60 s) shows the rate in use; else as
 * it was, its clock moved on. An idle gap earns nothing.
 */
export function advanceAdaptiveRate(
  state: AdaptiveRate | undefined,
  ceilingRpm: number,
  nowMs: number,
  plannedLastMinute: number,
  settings: AdaptiveRateSettings,
): AdaptiveRate {
  const rpm = adaptiveRpm(state, ceilingRpm, settings);
  if (!state) return { rpm, atMs: nowMs };
  // At most a minute's increase per advance: the ledger only says what the last minute planned.
  const elapsedMs = Math.min(60_000, Math.max(0, nowMs - state.atMs));
  const inUse = plannedLastMinute >= rpm * IN_USE_SHARE;
  const raised = inUse
    ? Math.min(ceilingRpm, rpm + (settings.increaseRpmPerMinute * elapsedMs) / 60_000)
    : rpm;
  return { ...state, rpm: raised, atMs: Math.max(state.atMs, nowMs) };
}

/**
 * The state after a 429 at `nowMs`: the rate times `decreaseFactor` (not under the floor), unless
 * the last decrease was within `sameWindowMs` (then unchanged).
 */
export function decreaseAdaptiveRate(
  state: AdaptiveRate | undefined,
  ceilingRpm: number,
  nowMs: number,
  settings: AdaptiveRateSettings,
): AdaptiveRate {
  if (state?.decreasedAtMs !== undefined && nowMs - state.decreasedAtMs < settings.sameWindowMs) return state;
  const rpm = adaptiveRpm(state, ceilingRpm, settings);
  const lowered = Math.max(settings.floorRpm, Math.min(ceilingRpm, rpm * settings.decreaseFactor));
  return { rpm: lowered, atMs: nowMs, decreasedAtMs: nowMs };
}

/** `quota` with its `rpm` the adaptive rate in force (the quota's own `rpm` is the ceiling). */
export function withAdaptiveRate<Q extends { rpm: number }>(
  quota: Q,
  state: AdaptiveRate | undefined,
  settings: AdaptiveRateSettings,
): Q {
  return { ...quota, rpm: adaptiveRpm(state, quota.rpm, settings) };
}

/** Requests planned in the 60 seconds up to `nowMs`, from a ledger's per-second counts. */
export function plannedInLastMinute(requests: Record<string, number> | undefined, nowMs: number): number {
  const nowSec = Math.floor(nowMs / 1000);
  let sum = 0;
  for (const [key, value] of Object.entries(requests ?? {})) {
    const second = Number(key);
    if (second > nowSec - 60 && second <= nowSec) sum += value;
  }
  return sum;
}

/**
 * What a plan at `nowMs` runs at: for a quota with `adaptive` settings, the state advanced to now
 * (by the ledger's last minute of `requests`) and the quota with that rate as its `rpm`; for any
 * other quota, the quota as it is and no state.
 */
export function adaptiveLimits<Q extends { rpm: number; adaptive?: AdaptiveRateSettings }>(
  quota: Q,
  state: AdaptiveRate | undefined,
  requests: Record<string, number> | undefined,
  nowMs: number,
): { limits: Q; adaptive?: AdaptiveRate } {
  const settings = quota.adaptive;
  if (!settings) return { limits: quota };
  const adaptive = advanceAdaptiveRate(
    state,
    quota.rpm,
    nowMs,
    plannedInLastMinute(requests, nowMs),
    settings,
  );
  return { limits: withAdaptiveRate(quota, adaptive, settings), adaptive };
}
