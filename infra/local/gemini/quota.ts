import type { ModelQuota } from './config.js';
import { StandInHttpError } from './errors.js';

/** Which limit a request ran into. */
export type QuotaKind = 'rpm' | 'tpm' | 'rpd';

/** One entry of a google.rpc.QuotaFailure, plus when the window frees enough room. */
export interface QuotaViolation {
  kind: QuotaKind;
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

/**
 * The 429 RESOURCE_EXHAUSTED answer: QuotaFailure (one violation per limit hit), Help, RetryInfo.
 * retryDelay is the longest of the violations' delays, in whole seconds like the real one ("12s").
 */
export function quotaExceededError(violations: QuotaViolation[]): StandInHttpError {
  const delay = Math.max(0, ...violations.map((v) => v.retryDelaySeconds));
  const lines = violations
    .map((v) => `* Quota exceeded for metric: ${v.quotaMetric}, limit: ${v.quotaValue}, model: ${v.model}`)
    .join('\n');
  const message =
    'You exceeded your current quota, please check your plan and billing details. For more information on ' +
    'this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, ' +
    `head to: https://ai.dev/rate-limit. \n${lines}\nPlease retry in ${delay}s.`;
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
    { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${delay}s` },
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

/** A time-ordered queue of (time, amount) entries, pruned from the front as the window rolls. */
class Window {
  private times: number[] = [];
  private amounts: number[] = [];
  private head = 0;
  private total = 0;

  constructor(private readonly lengthMs: number) {}

  prune(now: number): void {
    while (this.head < this.times.length && (this.times[this.head] as number) <= now - this.lengthMs) {
      this.total -= this.amounts[this.head] as number;
      this.head++;
    }
    if (this.head > 4096 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.amounts = this.amounts.slice(this.head);
      this.head = 0;
    }
  }

  count(): number {
    return this.times.length - this.head;
  }

  sum(): number {
    return this.total;
  }

  add(now: number, amount: number): void {
    this.times.push(now);
    this.amounts.push(amount);
    this.total += amount;
  }

  /** ms until entries leave the window so that `count + 1 <= max`. */
  msUntilCountBelow(now: number, max: number): number {
    const mustLeave = this.count() + 1 - max;
    if (mustLeave <= 0) return 0;
    const t = this.times[this.head + mustLeave - 1] as number;
    return t + this.lengthMs - now;
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

/**
 * Rolling-window accounting of realtime requests per model: requests and input tokens over the
 * last 60 s, requests over the last 24 h. Only admitted requests are recorded: a request rejected
 * with 429 consumes nothing, as upstream.
 */
export class QuotaLedger {
  private readonly minute = new Map<string, Window>();
  private readonly day = new Map<string, Window>();

  constructor(private readonly clock: () => number) {}

  private windows(model: string): { minute: Window; day: Window } {
    const minute = this.minute.get(model) ?? new Window(MINUTE_MS);
    const day = this.day.get(model) ?? new Window(DAY_MS);
    this.minute.set(model, minute);
    this.day.set(model, day);
    const now = this.clock();
    minute.prune(now);
    day.prune(now);
    return { minute, day };
  }

  /** The limits `tokens` more input tokens (one more request) would break; empty when admitted. */
  check(
    model: string,
    tokens: number,
    limits: ModelQuota | undefined,
    tier: 'paid' | 'free',
  ): QuotaViolation[] {
    if (!limits) return [];
    const { minute, day } = this.windows(model);
    const now = this.clock();
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
    if (limits.rpd != null && day.count() + 1 > limits.rpd) {
      out.push(violation('rpd', model, tier, limits.rpd, seconds(day.msUntilCountBelow(now, limits.rpd))));
    }
    return out;
  }

  /** Records an admitted request and its input tokens. */
  admit(model: string, tokens: number): void {
    const { minute, day } = this.windows(model);
    const now = this.clock();
    minute.add(now, tokens);
    day.add(now, 1);
  }

  /** Forgets every window. */
  reset(): void {
    this.minute.clear();
    this.day.clear();
  }
}
