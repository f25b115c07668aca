import { parseQuotas, type Quotas } from '../../functions/core/quotas.js';

/** A small quotas document for unit tests: two models, a known retry policy. */
export function testQuotas(): Quotas {
  return parseQuotas(
    {
      tier: 'unit',
      defaultModel: 'gemini-2.5-flash',
      batchDiscount: 0.5,
      batchMinItems: 1000,
      headroom: 0.98,
      queue: { maxAttempts: 5, minBackoffSeconds: 1, maxBackoffSeconds: 60, maxDoublings: 3 },
      models: {
        'gemini-2.5-flash': {
          rpm: 1000,
          tpm: 1_000_000,
          rpd: 10_000,
          batch: true,
          price: { inputPerMillion: 0.3, outputPerMillion: 2.5 },
        },
        'gemini-2.5-pro': {
          rpm: 150,
          tpm: 2_000_000,
          rpd: 10_000,
          batch: true,
          price: { inputPerMillion: 1.25, outputPerMillion: 10 },
        },
      },
    },
    'unit quotas',
  );
}
