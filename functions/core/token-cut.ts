/**
 * A model's planned token rate, lowered for a while after Gemini refused a request for the model's
 * input tokens per minute (a 429 whose QuotaFailure names `…InputTokens…PerMinute`): Gemini counted
 * more than the plan did (its tokenizer, other traffic of the project), so the plan keeps under a
 * share of the TPM until the cut runs out. A further such 429 a minute or more into a cut lowers it
 * again, to a floor; 429s of the same minute (a burst of items refused together) count once. The
 * cut is kept on the model's ledger (`DispatchLedger.tokenCut`), shared by every job of the model.
 * Pure.
 */

/** The share of the TPM planned until `untilMs`; `sinceMs`: when it was last lowered. */
export interface TokenRateCut {
  factor: number;
  untilMs: number;
  sinceMs: number;
}

/** Each lowering keeps this share of the rate planned before it. */
export const TOKEN_CUT_STEP = 0.8;
/** The lowest share of the TPM a cut plans with. */
export const TOKEN_CUT_FLOOR = 0.5;
/** How long a cut holds after the last TPM 429 (five of Gemini's one-minute windows). */
export const TOKEN_CUT_MS = 5 * 60_000;
/** 429s this close to the last lowering are the same minute's: they extend the cut, not deepen it. */
export const TOKEN_CUT_SAME_MINUTE_MS = 60_000;

/** Whether `cut` holds at `nowMs`. */
function holds(cut: TokenRateCut | undefined, nowMs: number): cut is TokenRateCut {
  return cut !== undefined && cut.untilMs > nowMs;
}

/** The cut after a per-minute TPM 429 at `nowMs`, given the one the ledger holds. */
export function cutAfterTokens429(current: TokenRateCut | undefined, nowMs: number): TokenRateCut {
  const untilMs = nowMs + TOKEN_CUT_MS;
  if (!holds(current, nowMs)) return { factor: TOKEN_CUT_STEP, untilMs, sinceMs: nowMs };
  if (nowMs - current.sinceMs < TOKEN_CUT_SAME_MINUTE_MS) return { ...current, untilMs };
  return { factor: Math.max(TOKEN_CUT_FLOOR, current.factor * TOKEN_CUT_STEP), untilMs, sinceMs: nowMs };
}

/** `quota` with its TPM lowered by `cut` while the cut holds; as it is otherwise. */
export function withTokenCut<Q extends { tpm: number }>(
  quota: Q,
  cut: TokenRateCut | undefined,
  nowMs: number,
): Q {
  if (!holds(cut, nowMs)) return quota;
  return { ...quota, tpm: quota.tpm * cut.factor };
}
