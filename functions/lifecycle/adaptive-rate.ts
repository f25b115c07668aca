import type { Quotas } from '../core/quotas.js';
import type { Logger } from '../platform/logger.js';
import type { LedgerStore } from '../platform/store/ledger.js';

/**
 * Gemini answered a model whose rate adapts 429 (Vertex's shared pool busy, or an `rpm: "auto"`
 * limit reached): its adaptive rate takes the multiplicative decrease on the model's ledger
 * (`core/adaptive-rate.ts`), for every job of the model. A model with a fixed rate is left alone.
 * Best effort, like the TPM cut: a failure is logged, and the item waits its delay all the same.
 */
export async function lowerRequestRate(
  ledger: Pick<LedgerStore, 'lowerRequestRate'>,
  quotas: Quotas,
  model: string,
  log: Logger,
): Promise<void> {
  const quota = quotas.models[model];
  if (!quota?.adaptive) return;
  try {
    const rate = await ledger.lowerRequestRate(model, quota);
    const rpm = Math.round(rate?.rpm ?? 0);
    log.warn(
      { event: 'quota.rate_lowered', model, rpm },
      `Gemini answered ${model} 429; planning at ${rpm} requests a minute`,
    );
  } catch (err) {
    log.error(
      { event: 'quota.rate_lower_failed', model, err: (err as Error).message },
      'could not lower the adaptive rate',
    );
  }
}
