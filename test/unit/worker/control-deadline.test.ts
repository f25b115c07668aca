import { describe, expect, it } from 'vitest';
import type { Deps } from '../../../functions/deps.js';
import { loadConfig } from '../../../functions/platform/config.js';
import { createTaskQueue } from '../../../functions/platform/task-queue.js';
import { workerDeps } from '../../../functions/worker/index.js';

/**
 * Issue 17, scenario 7: Cloud Tasks stops waiting for a task at its dispatch deadline and delivers
 * it again while the first run still goes on. A control task (a page of enqueuing, a finish watch)
 * runs up to its budget, and one more page: its deadline must cover that, and item tasks keep theirs.
 */
interface SentTask {
  name: string;
  dispatchDeadline: { seconds: number };
}

/** The tasks createTask was given, captured by a stand-in client. */
function capturingQueue(dispatchDeadlineSeconds: number) {
  const sent: SentTask[] = [];
  const client = {
    queuePath: (project: string, location: string, queue: string) =>
      `projects/${project}/locations/${location}/queues/${queue}`,
    createTask: async (request: { task: SentTask }) => {
      sent.push(request.task);
      return [request.task];
    },
  };
  const queue = createTaskQueue(
    {
      projectId: 'fanout-unit',
      region: 'us-central1',
      workerUrl: 'https://worker.invalid',
      dispatchDeadlineSeconds,
    },
    client as unknown as NonNullable<Parameters<typeof createTaskQueue>[1]>,
  );
  return { queue, sent };
}

describe('control tasks get a dispatch deadline that fits their run', () => {
  const config = loadConfig({
    GEMINI_BASE_URL: 'http://127.0.0.1:1',
    FIRESTORE_EMULATOR_HOST: '127.0.0.1:1',
  });
  const budgetMs = workerDeps({ config } as unknown as Deps).enqueueBudgetMs;

  it('waits for an enqueue page past its run budget, plus a page, within the 30 min Cloud Tasks allows', async () => {
    const { queue, sent } = capturingQueue(config.dispatchDeadlineSeconds);

    await queue.enqueueControl({ kind: 'enqueue', jobId: 'job-1', from: 0 }, 'job-1-enqueue-0');
    await queue.enqueueControl({ kind: 'finish', jobId: 'job-1', round: 0 }, 'job-1-finish-0');

    for (const task of sent) {
      expect(task.dispatchDeadline.seconds * 1000).toBeGreaterThanOrEqual(budgetMs + 60_000);
      expect(task.dispatchDeadline.seconds).toBeLessThanOrEqual(1800);
    }
    expect(sent).toHaveLength(2);
  });

  it('keeps the item deadline (Gemini timeout + 30 s) on item tasks', async () => {
    const { queue, sent } = capturingQueue(config.dispatchDeadlineSeconds);

    await queue.enqueueItems('gemini-2.5-flash', 'job-1', [{ itemId: '000000000', index: 0 }]);

    expect(sent[0]?.dispatchDeadline.seconds).toBe(config.dispatchDeadlineSeconds);
  });
});
