import { describe, expect, it } from 'vitest';
import { MAX_CONCURRENT_DISPATCHES, queueConcurrency } from '../../../functions/core/queue-concurrency.js';
import { testQuotas } from '../../helpers/test-quotas.js';

describe('queueConcurrency', () => {
  const quotas = testQuotas();

  it('never lets every queue together dispatch more at once than the worker serves', () => {
    for (const slots of [3, 10, 50, 160, 8000, 100_000]) {
      const { control, models } = queueConcurrency(quotas, slots);
      const total = control + Object.values(models).reduce((a, b) => a + b, 0);
      expect(total, `${slots} slots`).toBeLessThanOrEqual(slots);
      for (const n of Object.values(models)) {
        expect(n).toBeGreaterThanOrEqual(1);
        expect(n).toBeLessThanOrEqual(MAX_CONCURRENT_DISPATCHES);
      }
    }
  });

  it('shares the slots by RPM, the control queue taking a tenth (at most 100)', () => {
    const { control, models } = queueConcurrency(quotas, 160);
    expect(control).toBe(16);
    // 1,000 and 150 RPM: 142 slots left after one each.
    expect(models['gemini-2.5-flash']).toBe(1 + Math.floor((142 * 1000) / 1150));
    expect(models['gemini-2.5-pro']).toBe(1 + Math.floor((142 * 150) / 1150));
    expect(queueConcurrency(quotas, 8000).control).toBe(100);
  });

  it('refuses a worker too small for one slot a queue, saying what to raise', () => {
    expect(() => queueConcurrency(quotas, 2)).toThrow(/worker_max_instances or worker_concurrency/);
  });
});
