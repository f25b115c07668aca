import { describe, expect, it } from 'vitest';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { FINISH_WATCH_MAX_ROUNDS, finishWatchDelayMs } from '../../../functions/core/tasks.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { handleTask, type TaskDelivery, type WorkerDeps } from '../../../functions/worker/handler.js';
import { checksCompletion } from '../../../functions/worker/item-delivery.js';
import { FakeGemini, FakeMediaFetcher, fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';
import { TEST_WORKER_BOUNDS } from '../../helpers/worker-world.js';

const JOB = 'job-watch';
const NOW = Date.parse('2024-07-01T19:00:00Z');

async function setup(total: number) {
  return setupWithCapture(total);
}

async function setupWithCapture(total: number) {
  const capture = createLogCapture();
  const quotas = testQuotas();
  const logger = createLogger({ destination: capture.stream });
  const world = fakeWorld({ quotas, logger, clock: () => NOW });
  const { tasks, sent, lifecycle } = world;
  const job = normalizeJobRequest(
    { prompts: Array.from({ length: total }, (_, i) => `p${i}`), callbackUrl: 'https://example.test/cb' },
    quotas,
  );
  await lifecycle.create(
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
  const store = lifecycle;
  const deps: WorkerDeps = {
    lifecycle,
    planner: world.planner,
    gemini: new FakeGemini(),
    tasks,
    media: new FakeMediaFetcher(),
    quotas,
    logger,
    ...TEST_WORKER_BOUNDS,
    now: () => NOW,
  };
  return { store, tasks, sent, deps, capture };
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

  it('looks less and less often, and stops after a bounded number of rounds', async () => {
    const { tasks, capture, deps } = await setupWithCapture(5);

    await handleTask(delivery({ kind: 'finish', jobId: JOB, round: 40 }), deps);
    const last = await handleTask(
      delivery({ kind: 'finish', jobId: JOB, round: FINISH_WATCH_MAX_ROUNDS - 1 }),
      deps,
    );

    expect(tasks.controlSchedule.get(`${JOB}-finish-41`)).toBe(NOW + 60_000);
    expect(last.body.outcome).toBe('stopped');
    expect(tasks.controlTasks.has(`${JOB}-finish-${FINISH_WATCH_MAX_ROUNDS}`)).toBe(false);
    expect(capture.events('finish.watch_stopped')).toHaveLength(1);
  });

  it('waits two seconds between looks for the first minute', () => {
    expect(finishWatchDelayMs(0)).toBe(2000);
    expect(finishWatchDelayMs(29)).toBe(2000);
    expect(finishWatchDelayMs(30)).toBe(4000);
    expect(finishWatchDelayMs(35)).toBe(60_000);
  });
});
