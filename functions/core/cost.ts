import type { ModelQuota, Quotas } from './quotas.js';

/**
 * Cost as Google bills it (the Gemini API pricing page, named with its date in infra/quotas.json):
 *
 * - input tokens at the input price, the share of them read from a cache (`cachedContentTokenCount`,
 *   implicit or explicit caching) at the model's cached price;
 * - tool-use prompt tokens (`toolUsePromptTokenCount`: what a tool such as code execution or URL
 *   context fed back to the model) at the input price: they are input, counted apart from the prompt;
 * - output tokens and thinking tokens (`thoughtsTokenCount`) at the output price;
 * - above a model's long-context threshold (2.5 Pro: prompts over 200k tokens) every price of that
 *   request is the long-context one;
 * - the whole at the share of the tier that served it: standard 1, Batch and Flex 0.5, Priority
 *   its premium (1.75–2×).
 */

/** Token counts as Gemini reports them in `usageMetadata`. */
export interface UsageMetadata {
  promptTokenCount?: number;
  candidatesTokenCount?: number;
  thoughtsTokenCount?: number;
  /** Input tokens served from a cache (implicit caching is on for 2.5 models): a share of promptTokenCount. */
  cachedContentTokenCount?: number;
  /** Input tokens a tool's results fed back to the model; not part of promptTokenCount. */
  toolUsePromptTokenCount?: number;
  totalTokenCount?: number;
}

/** Token usage of one response, as the product records and prices it. */
export interface TokenUsage {
  promptTokens: number;
  outputTokens: number;
  /** Of `promptTokens`, those read from a cache (billed at the cached rate). */
  cachedTokens?: number;
  /** Tool-use prompt tokens, billed as input on top of `promptTokens`. */
  toolUseTokens?: number;
}

/** The pricing tier that served (or would serve) a request. */
export type PriceTier = 'standard' | 'flex' | 'priority' | 'batch';
export const PRICE_TIERS: readonly PriceTier[] = ['standard', 'flex', 'priority', 'batch'];

/**
 * Cached input costs this share of the input price unless the model's price says otherwise: the
 * 2.5 models' figure (about 10%); 2.0 Flash lists 25% and says so in infra/quotas.json.
 */
export const CACHED_INPUT_SHARE = 0.1;

/** Above this many prompt tokens a model with a `longContext` price bills every token at it. */
export const LONG_CONTEXT_DEFAULT_ABOVE = 200_000;

/** Input (tool use included) and output tokens of one response; thinking tokens are billed as output. */
export function usageFrom(metadata: UsageMetadata | undefined): TokenUsage {
  const cached = Math.min(metadata?.cachedContentTokenCount ?? 0, metadata?.promptTokenCount ?? 0);
  const toolUse = metadata?.toolUsePromptTokenCount ?? 0;
  return {
    promptTokens: metadata?.promptTokenCount ?? 0,
    outputTokens: (metadata?.candidatesTokenCount ?? 0) + (metadata?.thoughtsTokenCount ?? 0),
    ...(cached > 0 ? { cachedTokens: cached } : {}),
    ...(toolUse > 0 ? { toolUseTokens: toolUse } : {}),
  };
}

type Price = ModelQuota['price'];

/** The per-million prices a request of `promptTokens` pays: the long-context ones above the threshold. */
export function pricesFor(
  price: Price,
  promptTokens: number,
): { input: number; output: number; cachedInput: number } {
  const long = price.longContext;
  const above = long !== undefined && promptTokens > (long.aboveTokens ?? LONG_CONTEXT_DEFAULT_ABOVE);
  const input = above ? long.inputPerMillion : price.inputPerMillion;
  const cachedInput = above
    ? (long.cachedInputPerMillion ?? long.inputPerMillion * CACHED_INPUT_SHARE)
    : (price.cachedInputPerMillion ?? price.inputPerMillion * CACHED_INPUT_SHARE);
  return { input, output: above ? long.outputPerMillion : price.outputPerMillion, cachedInput };
}

/**
 * Cost in USD of the given usage at the model's prices (see the module comment), times `share`:
 * the tier's share of the standard price ({@link tierShare}). Rounded to a nano-dollar so sums
 * stay stable.
 */
export function costUsd(usage: TokenUsage, price: Price, share = 1): number {
  const cached = usage.cachedTokens ?? 0;
  const p = pricesFor(price, usage.promptTokens);
  const usd =
    ((usage.promptTokens - cached + (usage.toolUseTokens ?? 0)) * p.input +
      cached * p.cachedInput +
      usage.outputTokens * p.output) /
    1e6;
  return Math.round(usd * share * 1e9) / 1e9;
}

/** The share of the standard price a tier pays for `model` (Batch, Flex: 0.5; Priority: its premium). */
export function tierShare(quotas: Quotas, model: string, tier: PriceTier): number {
  switch (tier) {
    case 'standard':
      return 1;
    case 'batch':
      return quotas.batchDiscount;
    case 'flex':
      return quotas.serviceTiers.flex.priceShare;
    case 'priority':
      return (
        (Object.hasOwn(quotas.models, model) ? quotas.models[model]?.price.priorityShare : undefined) ??
        quotas.serviceTiers.priority.priceShare
      );
  }
}

/** What one answer costs at the tier that served it, and what it would have cost at standard. */
export function tierCost(
  quotas: Quotas,
  model: string,
  usage: TokenUsage,
  tier: PriceTier,
): { costUsd: number; standardCostUsd: number } {
  const price = Object.hasOwn(quotas.models, model) ? quotas.models[model]?.price : undefined;
  if (!price) return { costUsd: 0, standardCostUsd: 0 };
  return {
    costUsd: costUsd(usage, price, tierShare(quotas, model, tier)),
    standardCostUsd: costUsd(usage, price),
  };
}
