import { pacificMidnight } from '../../../functions/core/pacific-time.js';
import type { GeminiStandInConfig, ModelQuota } from './config.js';
import { StandInHttpError } from './errors.js';

/** Which limit a request ran into. */
export type QuotaKind = 'rpm' | 'tpm' | 'rpd';

/** One entry of a google.rpc.QuotaFailure, plus when the window frees enough room. */
export interface QuotaViolation {
  /** `spend`: the project's spend limit (spend.ts), not a per-model window. */
  kind: QuotaKind | 'spend';
  model: string;
  quotaMetric: string;
  quotaId: string;
  /** The limit, as the int64-as-string the real body carries. */
  quotaValue: string;
  /** Whole seconds until the window frees enough room for this request (RetryInfo.retryDelay). */
  retryDelaySeconds: number;
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** Metric and quotaId names per tier, as the real 429 bodies carry them. */
const QUOTA_NAMES: Record<'paid' | 'free', Record<QuotaKind, { metric: string; id: string }>> = {
  paid: {
    rpm: {
      metric: 'generativelanguage.googleapis.com/generate_content_paid_tier_requests',
      id: 'GenerateRequestsPerMinutePerProjectPerModel',
    },
    tpm: {
      metric: 'generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count',
      id: 'GenerateContentPaidTierInputTokensPerModelPerMinute',
    },
    rpd: {
      metric: 'generativelanguage.googleapis.com/generate_requests_per_model_per_day',
      id: 'GenerateRequestsPerDayPerProjectPerModel',
    },
  },
  free: {
    rpm: {
      metric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
      id: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
    },
    tpm: {
      metric: 'generativelanguage.googleapis.com/generate_content_free_tier_input_token_count',
      id: 'GenerateContentInputTokensPerModelPerMinute-FreeTier',
    },
    rpd: {
      metric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
      id: 'GenerateRequestsPerDayPerProjectPerModel-FreeTier',
    },
  },
};

/** Builds a violation record for `kind` (also used by the `[[fault:429…]]` prompt markers). */
export function violation(
  kind: QuotaKind,
  model: string,
  tier: 'paid' | 'free',
  value: number | string,
  retryDelaySeconds: number,
): QuotaViolation {
  const names = QUOTA_NAMES[tier][kind];
  return {
    kind,
    model,
    quotaMetric: names.metric,
    quotaId: names.id,
    quotaValue: String(value),
    retryDelaySeconds,
  };
}

/** The shapes a quota 429 comes in upstream. */
export type QuotaErrorShape = 'full' | 'no-retry-info' | 'bare';

/** Upstream's capacity 429: the bare body, no details at all. */
export const BARE_429_MESSAGE = 'Resource has been exhausted (e.g. check quota).';

/** The capacity 429 upstream answers when shared capacity, not the project's quota, is out. */
export function capacityExhaustedError(): StandInHttpError {
  return new StandInHttpError(429, 'RESOURCE_EXHAUSTED', BARE_429_MESSAGE);
}

/**
 * The 429 RESOURCE_EXHAUSTED answer: QuotaFailure (one violation per limit hit), Help, RetryInfo.
 * retryDelay is the longest of the violations' delays, in whole seconds like the real one ("12s").
 * Shape `no-retry-info` leaves RetryInfo (and the message's "Please retry in") out, `bare` is the
 * capacity body without any details: both are seen upstream for quota rejections too.
 */
export function quotaExceededError(
  violations: QuotaViolation[],
  shape: QuotaErrorShape = 'full',
): StandInHttpError {
  if (shape === 'bare') return capacityExhaustedError();
  const delay = Math.max(0, ...violations.map((v) => v.retryDelaySeconds));
  const lines = violations
    .map((v) => `* Quota exceeded for metric: ${v.quotaMetric}, limit: ${v.quotaValue}, model: ${v.model}`)
    .join('\n');
  const message =
    'You exceeded your current quota, please check your plan and billing details. For more information on ' +
    'this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, ' +
    `head to: https://ai.dev/rate-limit. \n${lines}${shape === 'full' ? `\nPlease retry in ${delay}s.` : ''}`;
  return new StandInHttpError(429, 'RESOURCE_EXHAUSTED', message, [
    {
      '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
      violations: violations.map((v) => ({
        quotaMetric: v.quotaMetric,
        quotaId: v.quotaId,
        quotaDimensions: { location: 'global', model: v.model },
        quotaValue: v.quotaValue,
      })),
    },
    {
      '@type': 'type.googleapis.com/google.rpc.Help',
      links: [
        {
          description: 'Learn more about Gemini API quotas',
          url: 'https://ai.google.dev/gemini-api/docs/rate-limits',
        },
      ],
    },
    ...(shape === 'full'
      ? [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${delay}s` }]
      : []),
  ]);
}

/** Which Batch API cap a batch creation ran into (only the stand-in tells, in a header). */
export type BatchCap = 'concurrent-batches' | 'enqueued-tokens';

/**
 * The 429 the Batch API answers a batch creation over a cap (concurrent batches, enqueued tokens per
 * model), as observed upstream: the generic quota message with a Help link only, no QuotaFailure and
 * no RetryInfo (room frees when running batches end, not at a known time). The stand-in names the
 * cap in an `x-standin-batch-cap` header, for tests and for whoever reads its logs.
 */
export function batchQuotaExceededError(cap: BatchCap): StandInHttpError {
  const message =
    'You exceeded your current quota, please check your plan and billing details. For more information on ' +
    'this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, ' +
    'head to: https://ai.dev/rate-limit. ';
  return new StandInHttpError(
    429,
    'RESOURCE_EXHAUSTED',
    message,
    [
      {
        '@type': 'type.googleapis.com/google.rpc.Help',
        links: [
          {
            description: 'Learn more about Gemini API quotas',
            url: 'https://ai.google.dev/gemini-api/docs/rate-limits',
          },
        ],
      },
    ],
    { 'x-standin-batch-cap': cap },
  );
}

/** A time-ordered queue of (time, requests, tokens) entries, pruned from the front as the window rolls. */
class Window {
  private times: number[] = [];
  private counts: number[] = [];
  private amounts: number[] = [];
  private head = 0;
  private requests = 0;
  private total = 0;

  constructor(private readonly lengthMs: number) {}

  prune(now: number): void {
    while (this.head < this.times.length && (this.times[this.head] as number) <= now - this.lengthMs) {
      this.requests -= this.counts[this.head] as number;
      this.total -= this.amounts[this.head] as number;
      this.head++;
    }
    if (this.head > 4096 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.counts = this.counts.slice(this.head);
      this.amounts = this.amounts.slice(this.head);
      this.head = 0;
    }
  }

  /** Requests in the window. */
  count(): number {
    return this.requests;
  }

  /** Input tokens in the window. */
  sum(): number {
    return this.total;
  }

  add(time: number, requests: number, tokens: number): void {
    this.times.push(time);
    this.counts.push(requests);
    this.amounts.push(tokens);
    this.requests += requests;
    this.total += tokens;
  }

  /** ms until entries leave the window so that `count + 1 <= max`. */
  msUntilCountBelow(now: number, max: number): number {
    let count = this.requests;
    for (let i = this.head; i < this.times.length && count + 1 > max; i++) {
      count -= this.counts[i] as number;
      if (count + 1 <= max) return (this.times[i] as number) + this.lengthMs - now;
    }
    return count + 1 > max ? this.lengthMs : 0;
  }

  /** ms until entries leave the window so that `sum + amount <= max` (a whole window if never). */
  msUntilSumFits(now: number, amount: number, max: number): number {
    if (amount > max) return this.lengthMs;
    let sum = this.total;
    for (let i = this.head; i < this.times.length && sum + amount > max; i++) {
      sum -= this.amounts[i] as number;
      if (sum + amount <= max) return (this.times[i] as number) + this.lengthMs - now;
    }
    return 0;
  }
}

/** Requests counted since the Pacific midnight that started the current quota day. */
interface PacificDay {
  start: number;
  end: number;
  count: number;
}

/** What the ledger reads from the configuration on every call (`quota`). */
export type QuotaSettings = GeminiStandInConfig['quota'];

/**
 * Accounting of realtime requests per model: requests and input tokens over the last 60 s, and
 * requests per day, over the last 24 h (`dayWindow: rolling`) or since the last midnight in
 * America/Los_Angeles (`pacific`, as upstream resets RPD). Only admitted requests are recorded: a
 * request rejected with 429 consumes nothing, as upstream. Other traffic of the same project
 * (`otherTraffic`) is entered into the minute window as it would have arrived, evenly spread and
 * already a minute old when first seen. The clock it reads is the server's plus `clockOffsetMs`.
 */
export class QuotaLedger {
  private readonly minute = new Map<string, Window>();
  private readonly day = new Map<string, Window>();
  private readonly pacific = new Map<string, PacificDay>();
  /** When the next request of other traffic lands, per model. */
  private readonly otherNext = new Map<string, number>();

  constructor(
    private readonly clock: () => number,
    private readonly settings: () => QuotaSettings = () => ({
      dayWindow: 'rolling',
      clockOffsetMs: 0,
      bareShare: 0,
      noRetryInfoShare: 0,
      otherTraffic: {},
    }),
  ) {}

  /** The quota clock: the server's clock plus `clockOffsetMs`. */
  now(): number {
    return this.clock() + this.settings().clockOffsetMs;
  }

  private windows(model: string, now: number): { minute: Window; day: Window; pacific: PacificDay } {
    const minute = this.minute.get(model) ?? new Window(MINUTE_MS);
    const day = this.day.get(model) ?? new Window(DAY_MS);
    let pacific = this.pacific.get(model);
    if (!pacific || now >= pacific.end || now < pacific.start) {
      pacific = { start: pacificMidnight(now), end: pacificMidnight(now, 1), count: 0 };
    }
    this.minute.set(model, minute);
    this.day.set(model, day);
    this.pacific.set(model, pacific);
    minute.prune(now);
    day.prune(now);
    return { minute, day, pacific };
  }

  /** Enters the other traffic of `model` that arrived up to `now` into its minute window. */
  private addOtherTraffic(model: string, minute: Window, now: number, limits: ModelQuota): void {
    const traffic = this.settings().otherTraffic;
    const share = traffic[model] ?? traffic['*'];
    const rpmShare = limits.rpm != null ? (share?.rpmShare ?? 0) : 0;
    const tpmShare = limits.tpm != null ? (share?.tpmShare ?? 0) : 0;
    if (rpmShare <= 0 && tpmShare <= 0) {
      this.otherNext.delete(model);
      return;
    }
    const perMinute = rpmShare > 0 ? Math.max(1, Math.round(rpmShare * (limits.rpm as number))) : 60;
    const intervalMs = MINUTE_MS / perMinute;
    const tokensEach = tpmShare > 0 ? Math.round((tpmShare * (limits.tpm as number)) / perMinute) : 0;
    let next = this.otherNext.get(model) ?? now - MINUTE_MS + intervalMs;
    if (next <= now - MINUTE_MS) next = now - MINUTE_MS + intervalMs;
    for (; next <= now; next += intervalMs) minute.add(next, rpmShare > 0 ? 1 : 0, tokensEach);
    this.otherNext.set(model, next);
  }

  /** The limits `tokens` more input tokens (one more request) would break; empty when admitted. */
  check(
    model: string,
    tokens: number,
    limits: ModelQuota | undefined,
    tier: 'paid' | 'free',
  ): QuotaViolation[] {
    if (!limits) return [];
    const now = this.now();
    const { minute, day, pacific } = this.windows(model, now);
    this.addOtherTraffic(model, minute, now, limits);
    const out: QuotaViolation[] = [];
    const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));
    if (limits.rpm != null && minute.count() + 1 > limits.rpm) {
      out.push(violation('rpm', model, tier, limits.rpm, seconds(minute.msUntilCountBelow(now, limits.rpm))));
    }
    if (limits.tpm != null && minute.sum() + tokens > limits.tpm) {
      out.push(
        violation('tpm', model, tier, limits.tpm, seconds(minute.msUntilSumFits(now, tokens, limits.tpm))),
      );
    }
    if (limits.rpd != null) {
      if (this.settings().dayWindow === 'pacific') {
        if (pacific.count + 1 > limits.rpd) {
          out.push(violation('rpd', model, tier, limits.rpd, seconds(pacific.end - now)));
        }
      } else if (day.count() + 1 > limits.rpd) {
        out.push(violation('rpd', model, tier, limits.rpd, seconds(day.msUntilCountBelow(now, limits.rpd))));
      }
    }
    return out;
  }

  /** Records an admitted request and its input tokens. */
  admit(model: string, tokens: number): void {
    const now = this.now();
    const { minute, day, pacific } = this.windows(model, now);
    minute.add(now, 1, tokens);
    day.add(now, 1, 0);
    pacific.count++;
  }

  /** Forgets every window and the other traffic's schedule. */
  reset(): void {
    this.minute.clear();
    this.day.clear();
    this.pacific.clear();
    this.otherNext.clear();
  }
}
