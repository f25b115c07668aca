import type { ModelQuota } from './quotas.js';

/** Token counts as Gemini reports them in `usageMetadata`. */
export interface UsageMetadata {
  promptTokenCount?: number;
  candidatesTokenCount?: number;
  thoughtsTokenCount?: number;
  totalTokenCount?: number;
}

/** Input and output tokens of one response; thinking tokens are billed as output. */
export function usageFrom(metadata: UsageMetadata | undefined): {
  promptTokens: number;
  outputTokens: number;
} {
  return {
    promptTokens: metadata?.promptTokenCount ?? 0,
    outputTokens: (metadata?.candidatesTokenCount ?? 0) + (metadata?.thoughtsTokenCount ?? 0),
  };
}

/** Cost in USD of the given usage at the model's prices; batch jobs pay `batchDiscount` of it. */
export function costUsd(
  usage: { promptTokens: number; outputTokens: number },
  price: ModelQuota['price'],
  discount = 1,
): number {
  const usd =
    (usage.promptTokens * price.inputPerMillion + usage.outputTokens * price.outputPerMillion) / 1e6;
  return Math.round(usd * discount * 1e9) / 1e9;
}
