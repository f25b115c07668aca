import type { Quotas } from '../../../functions/core/quotas.js';
import type { GeminiStandInConfigPatch } from './config.js';
import { deepMerge } from './config.js';

/**
 * The stand-in's cost settings from the quotas file the system plans with, so it enforces what the
 * planner plans: the project's spend limit and its window (`spendPer10MinUsd`,
 * `spendPacing.windowSeconds`), priced at the file's prices and tier shares, and each model's
 * implicit-cache minimum (`implicitCacheMinTokens`). The stack's own stand-in options win.
 */
export function standInCostSettings(
  quotas: Quotas,
  options: GeminiStandInConfigPatch = {},
): Pick<GeminiStandInConfigPatch, 'spend' | 'implicitCache'> {
  const spend = {
    limitUsd: quotas.spendPer10MinUsd ?? null,
    windowMs: quotas.spendPacing.windowSeconds * 1000,
    prices: Object.fromEntries(
      Object.entries(quotas.models).map(([m, q]) => [
        m,
        {
          inputPerMillion: q.price.inputPerMillion,
          outputPerMillion: q.price.outputPerMillion,
          ...(q.price.cachedInputPerMillion !== undefined
            ? { cachedInputPerMillion: q.price.cachedInputPerMillion }
            : {}),
        },
      ]),
    ),
    tierShares: {
      flex: quotas.serviceTiers.flex.priceShare,
      priority: quotas.serviceTiers.priority.priceShare,
    },
  };
  const minTokens = Object.fromEntries(
    Object.entries(quotas.models).flatMap(([m, q]) =>
      q.implicitCacheMinTokens ? [[m, q.implicitCacheMinTokens]] : [],
    ),
  );
  return {
    spend: deepMerge(spend, options.spend ?? {}) as GeminiStandInConfigPatch['spend'],
    implicitCache: deepMerge(
      { minTokens },
      options.implicitCache ?? {},
    ) as GeminiStandInConfigPatch['implicitCache'],
  };
}
