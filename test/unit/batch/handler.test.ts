import { describe, expect, it } from 'vitest';
import { tick } from '../../../functions/batch/handler.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

describe('scheduler tick', () => {
  it('resumes only the model queues whose daily-quota pause has run out', async () => {
    // Arrange
    const now = Date.parse('2024-07-02T07:00:05Z');
    const logger = createLogger({ destination: createLogCapture().stream });
    const world = fakeWorld({ quotas: testQuotas(), logger, clock: () => now });
    const { tasks } = world;
    const pauses = world.db.stores.pauses;
    await pauses.set('gemini-2.5-flash', now - 5000, 'daily quota');
    await pauses.set('gemini-2.5-pro', now + 60_000, 'daily quota');
    await tasks.pauseModel('gemini-2.5-flash');
    await tasks.pauseModel('gemini-2.5-pro');

    // Act
    const report = await tick({
      pauses,
      stores: world.db.stores,
      lifecycle: world.lifecycle,
      planner: world.planner,
      tasks,
      logger,
      stallMs: world.stallMs,
      now: () => now,
    });

    // Assert
    expect(report.resumedModels).toEqual(['gemini-2.5-flash']);
    expect(tasks.paused.has('gemini-2.5-flash')).toBe(false);
    expect(tasks.paused.has('gemini-2.5-pro')).toBe(true);
    expect((await pauses.list()).map((p) => p.model)).toEqual(['gemini-2.5-pro']);
  });
});
