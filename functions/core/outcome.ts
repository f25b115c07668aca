import type { ItemError } from './jobs.js';
import { secondsUntilPacificMidnight } from './pacific-time.js';

/**
 * What the worker does with a failed Gemini call. Decided here, without I/O, from the HTTP status and
 * the error body Gemini returned (the SDK's `ApiError` carries both).
 */
export type FailureKind =
  /** Per-minute quota (requests or tokens): back off for `retryAfterSeconds`, then try again. */
  | { kind: 'quota-minute'; retryAfterSeconds: number; error: ItemError; hit: QuotaHit }
  /** Per-day quota: nothing will pass until the daily reset; pause the model's queue. */
  | { kind: 'quota-day'; retryAfterSeconds: number; error: ItemError; hit: QuotaHit }
  /** 5xx, timeouts, network faults: another attempt may succeed. */
  | { kind: 'transient'; error: ItemError }
  /** Any other 4xx: the request itself is wrong; retrying cannot help. */
  | { kind: 'permanent'; error: ItemError };

interface GoogleErrorBody {
  error?: {
    code?: number;
    status?: string;
    message?: string;
    details?: Array<{ '@type'?: string; retryDelay?: string; violations?: Array<{ quotaId?: string }> }>;
  };
}

/**
 * Which limit a 429 names, from its `google.rpc.QuotaFailure` quotaId: e.g.
 * `GenerateRequestsPerMinutePerProjectPerModel` (requests a minute),
 * `GenerateContentPaidTierInputTokensPerModelPerMinute` (input tokens a minute),
 * `GenerateRequestsPerDayPerProjectPerModel` (requests a day). A 429 without details (upstream's
 * capacity answer) names none: `unknown`.
 */
export type QuotaLimit =
  | 'requests-per-minute'
  | 'tokens-per-minute'
  | 'requests-per-day'
  | 'tokens-per-day'
  | 'other'
  | 'unknown';

/** What a 429 says about the limit it hit: the quotaId, its kind, and RetryInfo's delay when given. */
export interface QuotaHit {
  /** The first violation's quotaId; `unknown` when the body names none. */
  quotaId: string;
  limit: QuotaLimit;
  /** `google.rpc.RetryInfo.retryDelay` in seconds, when the 429 carries one. */
  retryDelaySeconds?: number;
}

/** The limit a quotaId names (see {@link QuotaLimit}). */
function limitOf(quotaId: string | undefined): QuotaLimit {
  if (!quotaId) return 'unknown';
  const perDay = /PerDay/i.test(quotaId);
  const perMinute = /PerMinute/i.test(quotaId);
  if (/Tokens/i.test(quotaId)) return perDay ? 'tokens-per-day' : perMinute ? 'tokens-per-minute' : 'other';
  if (/Requests/i.test(quotaId))
    return perDay ? 'requests-per-day' : perMinute ? 'requests-per-minute' : 'other';
  return 'other';
}

/** Reads a 429's QuotaFailure and RetryInfo details (the Gemini API's error body). */
export function quotaHit(body: unknown): QuotaHit {
  const details = (body as GoogleErrorBody | undefined)?.error?.details ?? [];
  const failure = details.find((d) => d['@type']?.endsWith('google.rpc.QuotaFailure'));
  const quotaId = (failure ?? details.find((d) => d.violations))?.violations?.find((v) => v.quotaId)?.quotaId;
  const retry = details.find((d) => d['@type']?.endsWith('google.rpc.RetryInfo'));
  const retryDelaySeconds = parseDurationSeconds(retry?.retryDelay);
  return {
    quotaId: quotaId ?? 'unknown',
    limit: limitOf(quotaId),
    ...(retryDelaySeconds !== undefined ? { retryDelaySeconds } : {}),
  };
}

/** Parses a protobuf Duration string such as "12s" or "0.5s" into seconds. */
export function parseDurationSeconds(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const m = /^(\d+(?:\.\d+)?)s$/.exec(value.trim());
  return m ? Number(m[1]) : undefined;
}

/**
 * Classifies a failed call. `httpStatus` is undefined for network faults and client-side timeouts.
 * `body` is the parsed error body when there is one.
 */
export function classifyFailure(
  httpStatus: number | undefined,
  body: unknown,
  now: Date = new Date(),
): FailureKind {
  const err = (body as GoogleErrorBody | undefined)?.error;
  const error: ItemError = {
    code: httpStatus ?? 504,
    status: err?.status ?? (httpStatus === undefined ? 'DEADLINE_EXCEEDED' : statusName(httpStatus)),
    message:
      err?.message ?? (httpStatus === undefined ? 'Gemini did not answer in time.' : `HTTP ${httpStatus}`),
  };
  if (httpStatus === 429) {
    const details = err?.details ?? [];
    const quotaIds = details.flatMap((d) => d.violations ?? []).map((v) => v.quotaId ?? '');
    const hit = quotaHit(body);
    const perDay = quotaIds.some((q) => /PerDay/i.test(q));
    if (perDay) return { kind: 'quota-day', retryAfterSeconds: secondsUntilPacificMidnight(now), error, hit };
    return { kind: 'quota-minute', retryAfterSeconds: hit.retryDelaySeconds ?? 10, error, hit };
  }
  if (httpStatus === undefined || httpStatus >= 500 || httpStatus === 408)
    return { kind: 'transient', error };
  return { kind: 'permanent', error };
}

function statusName(code: number): string {
  const names: Record<number, string> = {
    400: 'INVALID_ARGUMENT',
    401: 'UNAUTHENTICATED',
    403: 'PERMISSION_DENIED',
    404: 'NOT_FOUND',
    408: 'DEADLINE_EXCEEDED',
    409: 'ABORTED',
    429: 'RESOURCE_EXHAUSTED',
    500: 'INTERNAL',
    501: 'UNIMPLEMENTED',
    503: 'UNAVAILABLE',
    504: 'DEADLINE_EXCEEDED',
  };
  return names[code] ?? (code >= 500 ? 'INTERNAL' : 'UNKNOWN');
}
