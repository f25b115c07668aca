import { CloudTasksClient } from '@google-cloud/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudTasksClientOptions } from '../../infra/local/cloud-tasks/client-options.js';
import {
  type CloudTasksEmulator,
  type QueueStats,
  startCloudTasksEmulator,
} from '../../infra/local/cloud-tasks/server.js';
import { type HttpSink, startHttpSink } from '../helpers/http-sink.js';

const PARENT = 'projects/fanout-memory/locations/us-central1';
const QUEUES = 3;
const TASKS_PER_QUEUE = 1700;
/** Every 50th task fails four times before it succeeds: five attempts, more than the kept three. */
const FLAKY_EVERY = 50;
const FLAKY_FAILURES = 4;
const LIMITS = { dispatches: 1000, finishedTasks: 300, attemptsPerTask: 3 };

/**
 * A long run in small: thousands of tasks (retries among them) through three queues, and what each
 * queue keeps for its stats, sampled while they run and at the end, never above the history limits.
 * Counts, not timing: the machine's speed only changes how many samples there are.
 */
describe('Cloud Tasks emulator: bounded memory over many tasks', () => {
  let emulator: CloudTasksEmulator;
  let client: CloudTasksClient;
  let sink: HttpSink;

  beforeAll(async () => {
    emulator = await startCloudTasksEmulator({ history: LIMITS });
    client = new CloudTasksClient(cloudTasksClientOptions(emulator.host));
    sink = await startHttpSink();
  });

  afterAll(async () => {
    await client.close();
    await emulator.close();
    await sink.close();
  });

  it('keeps only the configured window of dispatch and attempt history while thousands of tasks run', async () => {
    // Arrange
    const names = Array.from({ length: QUEUES }, (_, q) => `${PARENT}/queues/long-run-${q}`);
    for (const name of names) {
      await client.createQueue({
        parent: PARENT,
        queue: {
          name,
          // A target in this process takes a few dozen connections at once, not a thousand.
          rateLimits: { maxConcurrentDispatches: 20 },
          retryConfig: { minBackoff: { nanos: 10e6 }, maxBackoff: { nanos: 10e6 } },
        },
      });
    }
    sink.reply((request) => {
      const flaky = String(request.headers['x-cloudtasks-taskname']).startsWith('f-');
      const retries = Number(request.headers['x-cloudtasks-taskretrycount']);
      return { status: flaky && retries < FLAKY_FAILURES ? 500 : 200 };
    });
    const samples: QueueStats[] = [];
    const sampler = setInterval(() => {
      for (const name of names) samples.push(emulator.stats(name));
    }, 100);

    // Act
    try {
      await Promise.all(
        names.map(async (name) => {
          for (let start = 0; start < TASKS_PER_QUEUE; start += 250) {
            await Promise.all(
              Array.from({ length: Math.min(250, TASKS_PER_QUEUE - start) }, (_, k) => {
                const i = start + k;
                const id = `${i % FLAKY_EVERY === 0 ? 'f' : 'k'}-${i}`;
                return client.createTask({
                  parent: name,
                  task: { name: `${name}/tasks/${id}`, httpRequest: { url: sink.url } },
                });
              }),
            );
          }
        }),
      );
      await Promise.all(names.map((name) => emulator.drain(name, 60_000)));
    } finally {
      clearInterval(sampler);
    }
    const finals = names.map((name) => emulator.stats(name));

    // Assert
    const flakyPerQueue = Math.ceil(TASKS_PER_QUEUE / FLAKY_EVERY);
    const worst = (pick: (s: QueueStats) => number) => Math.max(...samples.map(pick));
    console.info(
      `${samples.length} samples; most kept: ${worst((s) => s.retained.dispatchTimes)} dispatch times, ` +
        `${worst((s) => s.retained.finishedTasks)} finished tasks, ${worst((s) => s.retained.attemptTimes)} attempt times`,
    );
    expect(samples.length).toBeGreaterThan(0);
    for (const s of samples) {
      expect(s.retained.dispatchTimes).toBeLessThanOrEqual(LIMITS.dispatches);
      expect(s.retained.finishedTasks).toBeLessThanOrEqual(LIMITS.finishedTasks);
      expect(s.retained.attemptTimes).toBeLessThanOrEqual(
        (s.retained.finishedTasks + s.retained.liveTasks) * LIMITS.attemptsPerTask,
      );
      expect(s.retained.liveTasks).toBeLessThanOrEqual(s.tasks);
    }
    for (const s of finals) {
      expect(s.succeeded).toBe(TASKS_PER_QUEUE);
      expect(s.dispatches).toBe(s.succeeded + s.failedAttempts);
      expect(s.failedAttempts).toBeGreaterThanOrEqual(flakyPerQueue * FLAKY_FAILURES);
      expect(s.retained).toEqual({
        dispatchTimes: LIMITS.dispatches,
        liveTasks: 0,
        finishedTasks: LIMITS.finishedTasks,
        attemptTimes: expect.any(Number),
        pendingEntries: 0,
      });
      expect(s.retained.attemptTimes).toBeLessThanOrEqual(LIMITS.finishedTasks * LIMITS.attemptsPerTask);
      expect(s.dispatchTimes).toHaveLength(LIMITS.dispatches);
      expect(s.perSecond.reduce((a, b) => a + b, 0)).toBe(LIMITS.dispatches);
      expect(Object.keys(s.attemptsByTask)).toHaveLength(LIMITS.finishedTasks);
      const flakyKept = Object.keys(s.attemptsByTask).filter((id) => id.startsWith('f-'));
      for (const id of flakyKept) {
        expect(s.attemptsByTask[id]).toBeGreaterThanOrEqual(FLAKY_FAILURES + 1);
        expect(s.attemptTimesByTask[id]).toHaveLength(LIMITS.attemptsPerTask);
      }
    }
  }, 60_000);
});
