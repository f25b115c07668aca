import { CloudTasksClient } from '@google-cloud/tasks';
import { describe, expect, it } from 'vitest';
import { emulatorClientOptions } from '../../functions/platform/task-queue.js';
import { createJob, resultsJsonl, stack, standInStats, waitForJob } from '../helpers/e2e.js';

const MODEL = 'gemini-e2e-late';
const TPM = 20_000;

describe('realtime path: deliveries far behind their plan', () => {
  it('plans items again after their queue was paused, so the late ones do not crowd the next minute', async () => {
    // Arrange: 25 prompts of 1,000 tokens at 20,000 TPM: 19 are planned now, 6 a minute later. The
    // queue is paused first, so the first 19 arrive 10 s late; sent as they arrive they would share a
    // minute with the other 6 (25,000 tokens).
    const tasks = new CloudTasksClient(emulatorClientOptions(stack().tasksEmulatorHost));
    const queue = tasks.queuePath(stack().projectId, 'us-central1', 'fanout-gemini-e2e-late');
    const prompts = Array.from({ length: 25 }, (_, i) => `${String(i).padStart(4, '0')}${'y'.repeat(3996)}`);
    await tasks.pauseQueue({ name: queue });

    // Act
    const id = await createJob({ model: MODEL, prompts });
    await new Promise((r) => setTimeout(r, 10_000));
    await tasks.resumeQueue({ name: queue });
    await tasks.close();
    const job = await waitForJob(id, 320_000);
    const lines = await resultsJsonl(id);
    const stats = (await standInStats()).models[MODEL]!;

    // Assert
    expect(job.counts.succeeded).toBe(25);
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(stats.rejected429).toBe(0);
    expect(stats.admitted).toBe(25);
    expect(stats.peakInputTokensPer60s).toBeLessThanOrEqual(TPM);
  }, 360_000);
});
