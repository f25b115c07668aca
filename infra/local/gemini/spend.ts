import type { z } from 'zod';
import { costUsd } from '../../../functions/core/cost.js';
import type { spendSchema } from './cost-config.js';
import { type AnswerOptions, answerFor, PLAIN_SHAPE } from './generate.js';
import type { QuotaViolation } from './quota.js';

/**
 * The project's spend-based rate limit, as the Gemini API rate-limits page describes it ("Spend-based
 * rate limits": besides RPM and TPM, a spend limit per usage tier — $10 / $50 / $200 for Tier 1 / 2
 * / 3 — evaluated over a rolling 10-minute window; past it the API answers 429 RESOURCE_EXHAUSTED).
 * The page gives neither the QuotaFailure's metric nor its quotaId, nor a retry delay: the names
 * in cost-config.ts are a hypothesis, settings so they can follow what Google really sends. Every admitted
 * realtime request counts at what it is billed (its answer's tokens at the model's prices and the
 * tier asked for: Flex half, Priority its premium), whatever model it names: one window per project.
 * The stand-in knows an answer's cost before generating it (answers are deterministic), so it
 * refuses a request that would take the window over the limit — stricter than a limiter that only
 * notices once the window is over. Batches are not counted (the page does not say they are; the
 * Batch API has limits of its own).
 */
export type SpendSettings = z.infer<typeof spendSchema>;

/** What an answer bills, in the terms the limiter prices. */
export interface BilledTokens {
  promptTokens: number;
  cachedTokens: number;
  /** Candidates and thinking tokens. */
  outputTokens: number;
}

/** The tokens the answer to `request` (of `promptTokens`, shaped by `options`) will bill. */
export function billedTokens(
  request: Record<string, unknown>,
  promptTokens: number,
  options: AnswerOptions,
): BilledTokens {
  const shape = options.shape ?? PLAIN_SHAPE;
  const cachedTokens = Math.min(shape.cached, promptTokens);
  if (shape.blockReason !== undefined) return { promptTokens, cachedTokens, outputTokens: 0 };
  const answer = answerFor(request, shape, options.rule);
  return { promptTokens, cachedTokens, outputTokens: answer.tokens + answer.thoughts };
}

/** USD an answer of `model` at `tier` bills (0 for a model without prices). */
export function billedUsd(
  settings: SpendSettings,
  model: string,
  tier: string,
  tokens: BilledTokens,
): number {
  const price = Object.hasOwn(settings.prices, model) ? settings.prices[model] : undefined;
  if (!price) return 0;
  const share =
    tier === 'flex' ? settings.tierShares.flex : tier === 'priority' ? settings.tierShares.priority : 1;
  return costUsd(
    {
      promptTokens: tokens.promptTokens,
      outputTokens: tokens.outputTokens,
      cachedTokens: tokens.cachedTokens,
    },
    price,
    share,
  );
}

/** The spend part of the stand-in's stats (`GET /__standin/stats` `spend`). */
export interface SpendStats {
  limitUsd: number | null;
  windowMs: number;
  /** Admitted requests that cost something while a limit was set. */
  requests: number;
  admittedUsd: number;
  /** The most any rolling window held. */
  busiestWindowUsd: number;
}

const MAX_LOG = 200_000;

/** The project's spend over the rolling window: admitted requests' costs, pruned as it rolls. */
export class SpendWindow {
  private entries: Array<{ atMs: number; usd: number }> = [];
  private total = 0;
  /** Every admitted request's cost, kept for tests that check each rolling window (`history`). */
  private readonly log: Array<{ atMs: number; usd: number }> = [];

  constructor(
    private readonly clock: () => number,
    private readonly settings: () => SpendSettings,
  ) {}

  private prune(now: number): void {
    const { windowMs } = this.settings();
    let drop = 0;
    while (drop < this.entries.length && this.entries[drop]!.atMs <= now - windowMs) {
      this.total -= this.entries[drop]!.usd;
      drop++;
    }
    if (drop > 0) this.entries = this.entries.slice(drop);
    if (this.entries.length === 0) this.total = 0;
  }

  /** The violation admitting `usd` more now would be, or undefined when it fits (or there is no limit). */
  check(usd: number): QuotaViolation | undefined {
    const { limitUsd, windowMs, quotaId, quotaMetric } = this.settings();
    if (limitUsd === null) return undefined;
    const now = this.clock();
    this.prune(now);
    if (this.total + usd <= limitUsd + 1e-12) return undefined;
    // When enough of the window has rolled off for this request to fit (a whole window if never).
    let sum = this.total;
    let freeAt = now + windowMs;
    for (const e of this.entries) {
      sum -= e.usd;
      if (sum + usd <= limitUsd) {
        freeAt = e.atMs + windowMs;
        break;
      }
    }
    return {
      kind: 'spend',
      model: '*',
      quotaMetric,
      quotaId,
      quotaValue: String(limitUsd),
      retryDelaySeconds: Math.max(1, Math.ceil((freeAt - now) / 1000)),
    };
  }

  admit(usd: number): void {
    if (this.settings().limitUsd === null || usd <= 0) return;
    const atMs = this.clock();
    this.entries.push({ atMs, usd });
    this.total += usd;
    this.log.push({ atMs, usd });
    // A bounded record: the newest half stays once it grows past the cap.
    if (this.log.length > MAX_LOG) this.log.splice(0, MAX_LOG / 2);
  }

  /**
   * What the stats report: the limit, the window, what was admitted, and the most any rolling
   * window held (every window that starts at an admitted request, the busiest included).
   */
  summary(): SpendStats {
    const { limitUsd, windowMs } = this.settings();
    let busiest = 0;
    let sum = 0;
    let end = 0;
    for (let start = 0; start < this.log.length; start++) {
      while (end < this.log.length && this.log[end]!.atMs < this.log[start]!.atMs + windowMs)
        sum += this.log[end++]!.usd;
      busiest = Math.max(busiest, sum);
      sum -= this.log[start]!.usd;
    }
    const admittedUsd = this.log.reduce((a, e) => a + e.usd, 0);
    return { limitUsd, windowMs, requests: this.log.length, admittedUsd, busiestWindowUsd: busiest };
  }

  reset(): void {
    this.entries = [];
    this.total = 0;
    this.log.length = 0;
  }
}
