import { describe, expect, it } from 'vitest';
import { queueRateLimits } from '../../../functions/core/queue-rate.js';
import { parseQuotas } from '../../../functions/core/quotas.js';
import { rampCapacity } from '../../../functions/core/ramp.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { createTwoStepPipeline } from '../../helpers/pipelines.js';
import { testQuotas } from '../../helpers/test-quotas.js';

// A pipeline's units are planned a few at a time, as the step before answers. On a ramping queue
// they go one a task at the ramp's rate: packed like a job's page, each small call's units would make
// tasks of their own in the same instants, more tasks than the ramp sends, and fall behind.

const T0 = Date.parse('2024-07-01T19:00:00.250Z');
const FLASH = 'gemini-2.5-flash';
const RAMP = { startShare: 0.2, seconds: 30, idleSeconds: 60 };

describe('planner: units on a ramping queue', () => {
  it("plans units planned one by one at the ramp's task rate, one unit a task", async () => {
    // Arrange: a cold queue that ramps, and a two-step pipeline of 40 items.
    const base = testQuotas();
    const quotas = parseQuotas({ ...base, queueRamp: RAMP });
    const world = fakeWorld({
      quotas,
      logger: createLogger({ destination: createLogCapture().stream }),
      clock: () => T0,
    });
    const prompts = Array.from({ length: 40 }, (_, i) => `prompt ${i}`);
    const normalized = normalizeJobRequest({ prompts, mode: 'realtime' }, quotas);
    const unitJob = await createTwoStepPipeline(world, quotas, FLASH, normalized.items);

    // Act: each item reaches step b on its own.
    for (const item of normalized.items) await world.planner.planUnits({ id: unitJob, model: FLASH }, [item]);

    // Assert: no second holds more units than the ramp sends tasks in it.
    const { maxDispatchesPerSecond: rate } = queueRateLimits(quotas.models[FLASH]!, quotas.headroom);
    const units = [...world.tasks.itemTasks.values()].filter((t) => t.jobId === unitJob);
    expect(units).toHaveLength(40);
    const perSecond = new Map<number, number>();
    for (const u of units) {
      const second = Math.floor(u.plannedMs! / 1000) - Math.floor(T0 / 1000);
      perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
    }
    for (const [second, n] of perSecond)
      expect(n, `second ${second}`).toBeLessThanOrEqual(rampCapacity(second, rate, RAMP));
  });
});
