import { z } from 'zod';
import { type AdaptiveRateSettings, DEFAULT_ADAPTIVE_RATE } from './adaptive-rate.js';

export type { AdaptiveRateSettings };

/**
 * `adaptiveRate` of infra/quotas.json: how the AIMD rate moves (core/adaptive-rate.ts), defaults
 * filled in. It governs models whose `rpm` is `"auto"`, and every model on Vertex AI.
 */
export const adaptiveRateSchema = z.object({
  startRpm: z.number().positive().default(DEFAULT_ADAPTIVE_RATE.startRpm),
  increaseRpmPerMinute: z.number().positive().default(DEFAULT_ADAPTIVE_RATE.increaseRpmPerMinute),
  decreaseFactor: z.number().gt(0).lt(1).default(DEFAULT_ADAPTIVE_RATE.decreaseFactor),
  floorRpm: z.number().positive().default(DEFAULT_ADAPTIVE_RATE.floorRpm),
  sameWindowMs: z.number().int().nonnegative().default(DEFAULT_ADAPTIVE_RATE.sameWindowMs),
  planAheadMs: z.number().int().min(10_000).max(600_000).default(DEFAULT_ADAPTIVE_RATE.planAheadMs),
});

/** Cloud Tasks' ceiling on one queue (500 dispatches a second), in requests per minute. */
export const AUTO_RPM_CEILING = 30_000;

/**
 * Models as the code reads them: `rpm: "auto"` becomes the ceiling (`maxRpm`, else
 * {@link AUTO_RPM_CEILING}) with the adaptive settings; a fixed `rpm` stays as written.
 */
export function resolveAutoRpm<M extends { rpm: number | 'auto'; maxRpm?: number | undefined }>(
  models: Record<string, M>,
  adaptive: AdaptiveRateSettings,
): Record<string, Omit<M, 'rpm' | 'maxRpm'> & { rpm: number; adaptive?: AdaptiveRateSettings }> {
  return Object.fromEntries(
    Object.entries(models).map(([name, { rpm, maxRpm: _ceiling, ...rest }]) => [
      name,
      rpm === 'auto' ? { ...rest, rpm: _ceiling ?? AUTO_RPM_CEILING, adaptive } : { ...rest, rpm },
    ]),
  );
}

/**
 * The quotas of a deployment on Vertex AI: every model's rate adapts (Dynamic Shared Quota has no
 * per-project RPM to plan on), its `rpm` the ceiling.
 */
export function adaptiveEverywhere<
  Q extends {
    adaptiveRate: AdaptiveRateSettings;
    models: Record<string, { adaptive?: AdaptiveRateSettings }>;
  },
>(quotas: Q): Q {
  const models = Object.fromEntries(
    Object.entries(quotas.models).map(([name, q]) => [name, { ...q, adaptive: quotas.adaptiveRate }]),
  );
  return { ...quotas, models };
}
