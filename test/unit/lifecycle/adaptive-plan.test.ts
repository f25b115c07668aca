import { describe, expect, it } from 'vitest';
import type { Quotas } from '../../../functions/core/quotas.js';
import { adaptiveEverywhere } from '../../../functions/core/quotas-adaptive.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

// The planner's hooks for a model whose rate adapts (core/adaptive-rate.ts): a short horizon, so a
// decrease reaches what is planned next, and late sends always planned.

const JOB = 'job-1';
const T0 = Date.parse('2024-07-01T19:00:00Z');

async function world(quotas: Quotas, items: number) {
  const logger = createLogger({ destination: createLogCapture().stream });
  const w = fakeWorld({ quotas, logger, clock: () => T0 });
  const prompts = Array.from({ length: items }, (_, i) => `prompt ${i}`);
  const job = normalizeJobRequest({ prompts }, quotas);
  await w.lifecycle.create(
    { id: JOB, model: job.model, mode: 'realtime', total: items, source: 'api' },
    job.items,
  );
  return { w, job: w.db.jobs.get(JOB)! };
}

describe('planning a model whose rate adapts', () => {
  it('plans only planAheadMs ahead at the adaptive rate, where a fixed rate plans the whole page', async () => {
    // Arrange: 500 items; the adaptive rate starts at 60 RPM and looks 60 s ahead.
    const adaptive = await world(adaptiveEverywhere(testQuotas()), 500);
    const fixed = await world(testQuotas(), 500);
    // Act
    const a = await adaptive.w.planner.enqueuePage(adaptive.job, 0);
    const f = await fixed.w.planner.enqueuePage(fixed.job, 0);
    // Assert: about a minute at 60 RPM (its burst and the horizon's edge second included).
    expect(a.done).toBe(false);
    expect(a.through).toBeGreaterThan(55);
    expect(a.through).toBeLessThan(70);
    expect(a.resumeAtMs).toBeLessThanOrEqual(T0 + 31_000);
    expect(f).toMatchObject({ through: 500, done: true });
  });

  it('gives a late send a slot on the plan even where the ledger is light', async () => {
    // Arrange: the current second's share of the adaptive rate is taken.
    const adaptive = await world(adaptiveEverywhere(testQuotas()), 10);
    const fixed = await world(testQuotas(), 10);
    await adaptive.w.db.stores.ledger.reserve(adaptive.job.model, [10, 10, 10], adaptiveQuota(), 0.98);
    await fixed.w.db.stores.ledger.reserve(
      fixed.job.model,
      [10, 10, 10],
      testQuotas().models[fixed.job.model]!,
      0.98,
    );
    const itemOf = (w: typeof adaptive.w) => w.db.item(JOB, '000000005')!;
    // Act
    const adaptiveSlot = await adaptive.w.planner.replanLate(
      adaptive.job,
      itemOf(adaptive.w),
      T0 - 10_000,
      true,
    );
    const fixedSlot = await fixed.w.planner.replanLate(fixed.job, itemOf(fixed.w), T0 - 10_000, true);
    // Assert
    expect(adaptiveSlot).toBeGreaterThan(T0);
    expect(fixedSlot).toBeUndefined();
  });
});

function adaptiveQuota() {
  const quotas = adaptiveEverywhere(testQuotas());
  return quotas.models[quotas.defaultModel]!;
}
