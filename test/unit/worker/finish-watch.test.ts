import { describe, expect, it } from 'vitest';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { createLogger } from '../../../functions/platform/logger.js';
import {
  checksCompletion,
  handleTask,
  type TaskDelivery,
  type WorkerDeps,
} from '../../../functions/worker/handler.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../test-quotas.js';
import { FakeGemini, FakeJobStore, FakeMediaFetcher, FakeTaskQueue, fakeNotify } from './fakes.js';

const JOB = 'job-watch';
const NOW = Date.parse('2024-07-01T19:00:00Z');

async function setup(total: number) {
  const quotas = testQuotas();
  const store = new FakeJobStore(() => NOW);
  const tasks = new FakeTaskQueue();
  const { sent, notify } = fakeNotify();
  const job = normalizeJobRequest(
    { prompts: Array.from({ length: total }, (_, i) => `p${i}`), callbackUrl: 'https://example.test/cb' },
    quotas,
  );
  await store.createJob(
    {
      id: JOB,
      model: job.model,
      mode: 'realtime',
      total,
      source: 'api',
      callbackUrl: 'https://example.test/cb',
    },
    job.items,
  );
  const deps: WorkerDeps = {
    store,
    gemini: new FakeGemini(),
    tasks,
    media: new FakeMediaFetcher(),
    quotas,
    logger: createLogger({ destination: createLogCapture().stream }),
    notify,
    leaseMs: 60_000,
    geminiTimeoutMs: 10_000,
    enqueueBudgetMs: 60_000,
    now: () => NOW,
  };
  return { store, tasks, sent, deps };
}

const delivery = (payload: TaskDelivery['payload']): TaskDelivery => ({
  queueName: 'q',
  taskName: 't',
  retryCount: 0,
  executionCount: 0,
  payload,
});

describe('finishing a job', () => {
  it('checks completion only near the end of the job', () => {
    expect(checksCompletion(0, 1000)).toBe(false);
    expect(checksCompletion(991, 1000)).toBe(false);
    expect(checksCompletion(992, 1000)).toBe(true);
    expect(checksCompletion(9949, 10_000)).toBe(false);
    expect(checksCompletion(9950, 10_000)).toBe(true);
    expect(checksCompletion(1, 10)).toBe(false);
    expect(checksCompletion(2, 10)).toBe(true);
    expect(checksCompletion(0, 5)).toBe(true);
  });

  it('starts the finish watcher when enqueuing is done, two seconds out', async () => {
    const { tasks, deps } = await setup(3);

    await handleTask(delivery({ kind: 'enqueue', jobId: JOB, from: 0 }), deps);

    expect(tasks.controlTasks.get(`${JOB}-finish-0`)).toEqual({ kind: 'finish', jobId: JOB, round: 0 });
  });

  it('finishes a job whose last item was an early one, through the watcher, and notifies once', async () => {
    // Arrange: 200 items; every item but item 0 finishes first, then item 0 (not "near the end").
    const { store, tasks, sent, deps } = await setup(200);
    for (let i = 1; i < 200; i++) {
      await handleTask(delivery({ kind: 'item', jobId: JOB, itemId: String(i).padStart(9, '0') }), deps);
    }
    await handleTask(delivery({ kind: 'item', jobId: JOB, itemId: '000000000' }), deps);
    const before = await store.getJob(JOB);

    // Act
    const reply = await handleTask(delivery({ kind: 'finish', jobId: JOB, round: 3 }), deps);
    const again = await handleTask(delivery({ kind: 'finish', jobId: JOB, round: 4 }), deps);

    // Assert
    expect(before?.status).toBe('running');
    expect(reply.body.outcome).toBe('finished');
    expect((await store.getJob(JOB))?.status).toBe('succeeded');
    expect(again.body.outcome).toBe('terminal');
    expect(sent).toHaveLength(1);
    expect(tasks.controlTasks.has(`${JOB}-finish-4`)).toBe(false);
  });

  it('looks again in a new named task while items are pending', async () => {
    const { tasks, deps } = await setup(5);

    const reply = await handleTask(delivery({ kind: 'finish', jobId: JOB, round: 7 }), deps);

    expect(reply).toMatchObject({ status: 200, body: { outcome: 'watching' } });
    expect(tasks.controlTasks.get(`${JOB}-finish-8`)).toEqual({ kind: 'finish', jobId: JOB, round: 8 });
  });
});
