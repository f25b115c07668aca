import { describe, expect, it } from 'vitest';
import { tick } from '../../../functions/batch/handler.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { FakeJobStore, FakeTaskQueue } from '../worker/fakes.js';

describe('scheduler tick', () => {
  it('resumes only the model queues whose daily-quota pause has run out', async () => {
    // Arrange
    const now = Date.parse('2024-07-02T07:00:05Z');
    const store = new FakeJobStore(() => now);
    const tasks = new FakeTaskQueue();
    await store.setQuotaPause('gemini-2.5-flash', now - 5000, 'daily quota');
    await store.setQuotaPause('gemini-2.5-pro', now + 60_000, 'daily quota');
    await tasks.pauseModel('gemini-2.5-flash');
    await tasks.pauseModel('gemini-2.5-pro');

    // Act
    const report = await tick({
      store,
      tasks,
      logger: createLogger({ destination: createLogCapture().stream }),
      now: () => now,
    });

    // Assert
    expect(report.resumedModels).toEqual(['gemini-2.5-flash']);
    expect(tasks.paused.has('gemini-2.5-flash')).toBe(false);
    expect(tasks.paused.has('gemini-2.5-pro')).toBe(true);
    expect((await store.listQuotaPauses()).map((p) => p.model)).toEqual(['gemini-2.5-pro']);
  });
});
