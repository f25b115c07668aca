import type { ModelQuota } from './quotas.js';

/** Token counts as Gemini reports them in `usageMetadata`. */
export interface UsageMetadata {
  promptTokenCount?: number;
  candidatesTokenCount?: number;
  thoughtsTokenCount?: number;
  /** Input tokens served from a cache (implicit caching is on for 2.5 models): a share of promptTokenCount. */
  cachedContentTokenCount?: number;
  totalTokenCount?: number;
}

/** Token usage of one response, as the product records and prices it. */
export interface TokenUsage {
  promptTokens: number;
  outputTokens: number;
  /** Of `promptTokens`, those read from a cache (billed at the cached rate). */
  cachedTokens?: number;
}

/** Cached input costs this share of the input price unless the model's price says otherwise. */
export const CACHED_INPUT_SHARE = 0.25;

/** Input and output tokens of one response; thinking tokens are billed as output. */
export function usageFrom(metadata: UsageMetadata | undefined): TokenUsage {
  const cached = Math.min(metadata?.cachedContentTokenCount ?? 0, metadata?.promptTokenCount ?? 0);
  return {
    promptTokens: metadata?.promptTokenCount ?? 0,
    outputTokens: (metadata?.candidatesTokenCount ?? 0) + (metadata?.thoughtsTokenCount ?? 0),
    ...(cached > 0 ? { cachedTokens: cached } : {}),
  };
}

/**
 * Cost in USD of the given usage at the model's prices: cached input at `cachedInputPerMillion`
 * (25% of the input price by default), the rest of the input and all output (thinking included) at
 * theirs; batch jobs pay `batchDiscount` of it.
 */
export function costUsd(usage: TokenUsage, price: ModelQuota['price'], discount = 1): number {
  const cached = usage.cachedTokens ?? 0;
  const cachedPrice = price.cachedInputPerMillion ?? price.inputPerMillion * CACHED_INPUT_SHARE;
  const usd =
    ((usage.promptTokens - cached) * price.inputPerMillion +
      cached * cachedPrice +
      usage.outputTokens * price.outputPerMillion) /
    1e6;
  return Math.round(usd * discount * 1e9) / 1e9;
}
