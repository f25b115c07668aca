import { z } from 'zod';

/**
 * The job view's `implicitCache` (`GET /jobs/{id}`): what Gemini's implicit cache served of the
 * job's answers. `hitRate` is the share of the answers Gemini gave (response-cache hits are not
 * calls) whose input was partly read from the cache (`usageMetadata.cachedContentTokenCount`);
 * `cachedTokens` is how many input tokens it served; `savedUsd` what those tokens would have cost
 * at the input price, less what they cost at the cached price, at the tier that served each answer.
 * Absent until an answer has read cached input.
 */
export const implicitCacheViewSchema = z.looseObject({
  hitRate: z.number().min(0).max(1),
  cachedTokens: z.number().int().nonnegative(),
  savedUsd: z.number().nonnegative(),
});
