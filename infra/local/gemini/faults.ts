import type { Prng } from '../prng.js';
import type { GeminiStandInConfig, LatencySpec } from './config.js';

/**
 * Faults a realtime request can be given. Prompt markers make them deterministic for end-to-end
 * tests: a prompt containing `[[fault:503]]` always gets a 503, whatever the configured shares.
 *
 * | marker                | answer                                                        |
 * |-----------------------|---------------------------------------------------------------|
 * | `[[fault:400]]`       | 400 INVALID_ARGUMENT (before quota: consumes nothing)         |
 * | `[[fault:429]]`       | 429, per-minute requests quotaId (consumes nothing)           |
 * | `[[fault:429-tpm]]`   | 429, per-minute input tokens quotaId                          |
 * | `[[fault:429-day]]`   | 429, per-day requests quotaId                                 |
 * | `[[fault:429-no-retry]]` | 429, per-minute requests quotaId, no RetryInfo             |
 * | `[[fault:429-capacity]]` | upstream's bare capacity 429: no details at all            |
 * | `[[fault:500]]`       | 500 INTERNAL (after admission: consumes quota, as upstream)   |
 * | `[[fault:503]]`       | 503 UNAVAILABLE "The model is overloaded…"                    |
 * | `[[fault:timeout]]`   | held open `faults.timeoutMs`, then 504 DEADLINE_EXCEEDED      |
 * | `[[fault:hang]]`      | never answered: held open until the client goes away          |
 * | `[[fault:malformed]]` | 200 with a body that is not valid JSON                        |
 * | `[[fault:truncated]]` | 200 whose body stops halfway: the connection drops            |
 *
 * In a batch, a line whose prompt carries a marker becomes an error line with that code.
 *
 * Answers that come back 200 but wrong, for a JSON answer (`responseMimeType: application/json`),
 * as users see upstream do (broken JSON from the Batch API with `responseJsonSchema`, crmne/ruby_llm
 * #894); see {@link jsonAnswerFault}:
 *
 * | marker                    | answer                                                           |
 * |---------------------------|------------------------------------------------------------------|
 * | `[[fault:bad-json]]`      | the JSON text cut before its end (not JSON), on every turn       |
 * | `[[fault:bad-json-once]]` | the same, but only while the conversation has no model turn yet: |
 * |                           | asked again with the answer and a follow-up turn, it is right    |
 *
 * `[[fault:batch-429]]`, `[[fault:batch-500]]` and `[[fault:batch-503]]` act only in a batch: that
 * line is a transient error line, and the same prompt sent alone is answered (a retry would pass).
 */
export type FaultKind =
  | '400'
  | '429'
  | '429-tpm'
  | '429-day'
  | '429-no-retry'
  | '429-capacity'
  | '500'
  | '503'
  | 'timeout'
  | 'hang'
  | 'malformed'
  | 'truncated';

const MARKER =
  /\[\[fault:(400|429-tpm|429-day|429-no-retry|429-capacity|429|500|503|timeout|hang|malformed|truncated)\]\]/;

const BATCH_LINE_MARKER = /\[\[fault:batch-(429|500|503)\]\]/;

/** The transient error a batch line's marker asks for (`[[fault:batch-503]]`), if any. */
export function batchLineFault(prompt: string): '429' | '500' | '503' | undefined {
  const match = BATCH_LINE_MARKER.exec(prompt);
  return match ? (match[1] as '429' | '500' | '503') : undefined;
}

/** The fault a prompt's marker asks for, if any. */
export function markerFault(prompt: string): FaultKind | undefined {
  const match = MARKER.exec(prompt);
  return match ? (match[1] as FaultKind) : undefined;
}

/**
 * Draws the random fault (if any) an admitted request for `model` gets, from the model's own shares
 * (`faults.byModel`) or else the global ones.
 */
export function randomFault(config: GeminiStandInConfig, prng: Prng, model: string): FaultKind | undefined {
  const f = config.faults.byModel[model] ?? config.faults;
  const total = f.internalShare + f.unavailableShare + f.timeoutShare + f.malformedShare + f.truncatedShare;
  if (total <= 0) return undefined;
  const r = prng();
  let edge = f.internalShare;
  if (r < edge) return '500';
  edge += f.unavailableShare;
  if (r < edge) return '503';
  edge += f.timeoutShare;
  if (r < edge) return 'timeout';
  edge += f.malformedShare;
  if (r < edge) return 'malformed';
  edge += f.truncatedShare;
  if (r < edge) return 'truncated';
  return undefined;
}

/**
 * Whether a request for `model` gets upstream's capacity 429 (before admission, whatever the quota),
 * drawn from `capacityShare` (the model's own in `faults.byModel`, else the global one). Draws
 * nothing when the share is 0, so other random patterns stay as they were.
 */
export function capacityFault(config: GeminiStandInConfig, prng: Prng, model: string): boolean {
  const share = (config.faults.byModel[model] ?? config.faults).capacityShare;
  return share > 0 && prng() < share;
}

/** Whether a request for `model` gets a detailed per-minute 429 from `quotaShare` (as `capacityFault`). */
export function quotaFault(config: GeminiStandInConfig, prng: Prng, model: string): boolean {
  const share = (config.faults.byModel[model] ?? config.faults).quotaShare;
  return share > 0 && prng() < share;
}

/** The latency (ms) to add before answering a request for `model`. */
export function latencyFor(config: GeminiStandInConfig, model: string, prng: Prng): number {
  const spec: LatencySpec | undefined = config.latency[model] ?? config.latency['*'];
  if (spec === undefined) return 0;
  if (typeof spec === 'number') return spec;
  const jitter = spec.jitterMs > 0 ? (prng() * 2 - 1) * spec.jitterMs : 0;
  return Math.max(0, Math.round(spec.meanMs + jitter));
}

const BAD_JSON = /\[\[fault:bad-json(-once)?\]\]/;

/**
 * The JSON answer `json` as a request's `[[fault:bad-json…]]` marker breaks it (see the table
 * above), or `json` itself. `prompt` is the request's prompt text; `followUp` whether its contents
 * hold a model turn (a repair asked after an answer).
 */
export function jsonAnswerFault(json: string, prompt: string, followUp: boolean): string {
  const match = BAD_JSON.exec(prompt);
  if (!match || (match[1] && followUp)) return json;
  return json.slice(0, Math.max(1, json.length - 2));
}
