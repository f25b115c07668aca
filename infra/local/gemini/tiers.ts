import type { Prng } from '../prng.js';
import type { GeminiStandInConfig, ModelQuota } from './config.js';
import { invalidArgument } from './errors.js';

/**
 * The synchronous service tiers of generateContent, as the Gemini API docs describe them (the
 * "Flex inference" and "Priority inference" pages, and "Optimization and inference"): a request sets
 * `serviceTier` in its body (`@google/genai` copies `config.serviceTier` there, lower case:
 * `standard`, `flex`, `priority`; the proto's `SERVICE_TIER_*` names are taken too), standard when
 * it is left out. The answer's `x-gemini-service-tier` header says which tier served it.
 *
 * - Flex: waits 1–15 minutes (`serviceTiers.flex`, scaled by `timeScale` for tests), counts against
 *   the ordinary limits like any request, and is shed with 503 UNAVAILABLE when Flex capacity is full
 *   (`capacityFull`, a share, or the prompt marker `[[flex:shed]]`); it never falls back to standard
 *   by itself.
 * - Priority: counted against the ordinary limits too, and against its own, `limitShare` (0.3) of
 *   them; a request over those is served as standard (not refused), and the header says `standard`.
 */
export type ServiceTier = 'standard' | 'flex' | 'priority';

/** The response header naming the tier that served a request. */
export const SERVICE_TIER_HEADER = 'x-gemini-service-tier';

const TIER_NAMES: Record<string, ServiceTier> = {
  unspecified: 'standard',
  standard: 'standard',
  flex: 'flex',
  priority: 'priority',
  SERVICE_TIER_UNSPECIFIED: 'standard',
  SERVICE_TIER_STANDARD: 'standard',
  SERVICE_TIER_FLEX: 'flex',
  SERVICE_TIER_PRIORITY: 'priority',
};

/** The tier a request asks for; 400 INVALID_ARGUMENT for a value the enum does not have. */
export function requestedTier(request: Record<string, unknown>): ServiceTier {
  const value = request.serviceTier;
  if (value === undefined || value === null) return 'standard';
  const tier = typeof value === 'string' && Object.hasOwn(TIER_NAMES, value) ? TIER_NAMES[value] : undefined;
  if (!tier) {
    throw invalidArgument(
      `Invalid value at 'service_tier' (type.googleapis.com/google.ai.generativelanguage.v1beta.ServiceTier), ${JSON.stringify(value)}`,
    );
  }
  return tier;
}

/** Priority's own limits: `share` of each of the model's (at least 1); none where the model has none. */
export function priorityLimits(limits: ModelQuota | undefined, share: number): ModelQuota | undefined {
  if (!limits) return undefined;
  const part = (n: number | null | undefined) => (n == null ? n : Math.max(1, Math.floor(n * share)));
  return { rpm: part(limits.rpm), tpm: part(limits.tpm), rpd: part(limits.rpd) };
}

const FLEX_SHED_MARKER = /\[\[flex:shed\]\]/;

/** Whether an admitted Flex request is shed (503): capacity full, the marker, or a draw of `shedShare`. */
export function flexShed(config: GeminiStandInConfig, prng: Prng, prompt: string): boolean {
  const flex = config.serviceTiers.flex;
  if (flex.capacityFull || FLEX_SHED_MARKER.test(prompt)) return true;
  return flex.shedShare > 0 && prng() < flex.shedShare;
}

/** How long a Flex answer waits (ms): uniform in [minMs, maxMs], times `timeScale`. */
export function flexWaitMs(config: GeminiStandInConfig, prng: Prng): number {
  const { minMs, maxMs, timeScale } = config.serviceTiers.flex;
  if (timeScale <= 0) return 0;
  const low = Math.min(minMs, maxMs);
  const span = Math.max(minMs, maxMs) - low;
  return Math.round((low + (span > 0 ? prng() * span : 0)) * timeScale);
}
