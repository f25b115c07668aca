import { randomUUID } from 'node:crypto';
import { CloudTasksClient } from '@google-cloud/tasks';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cloudTasksClientOptions } from '../../infra/local/cloud-tasks/client-options.js';
import { IDEAL_BEHAVIOURS, STRICT_BEHAVIOURS } from '../../infra/local/cloud-tasks/profile.js';
import { type CloudTasksEmulator, startCloudTasksEmulator } from '../../infra/local/cloud-tasks/server.js';
import { type HttpSink, startHttpSink } from '../helpers/http-sink.js';

const PARENT = 'projects/fanout-strict/locations/us-central1';
const DAY_MS = 24 * 60 * 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The error a call failed with (undefined on success), observed at once so none goes unhandled. */
const failure = (call: Promise<unknown>): Promise<unknown> =>
  call.then(
    () => undefined,
    (error: unknown) => error,
  );

const timestamp = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

/**
 * The strict profile's queue-level behaviours, each on its own: the other strict behaviours that
 * move dispatch times (ramp-up, throttling, jitter) are turned off so only the one under test acts.
 */
describe('Cloud Tasks emulator, strict profile: burst, queue names, schedule horizon, Content-Type', () => {
  let emulator: CloudTasksEmulator;
  let client: CloudTasksClient;
  let sink: HttpSink;

  const QUIET = { dispatchRamp: false, throttle: false, dispatchJitterMs: 0 } as const;

  async function newQueue(rateLimits: { maxDispatchesPerSecond?: number; maxBurstSize?: number } = {}) {
    const name = `${PARENT}/queues/s-${randomUUID().slice(0, 8)}`;
    const [queue] = await client.createQueue({ parent: PARENT, queue: { name, rateLimits } });
    return { name, queue };
  }

  beforeAll(async () => {
    emulator = await startCloudTasksEmulator({ profile: 'strict', ...QUIET });
    client = new CloudTasksClient(cloudTasksClientOptions(emulator.host));
  });

  afterAll(async () => {
    await client.close();
    await emulator.close();
  });

  beforeEach(async () => {
    emulator.configure({ profile: 'strict', ...QUIET });
    sink = await startHttpSink();
    return () => sink.close();
  });

  it('turns every upstream behaviour on under strict and none under ideal, each overridable', async () => {
    // Arrange
    const ideal = await startCloudTasksEmulator();
    const tuned = await startCloudTasksEmulator({
      profile: 'strict',
      dispatchRamp: { durationMs: 500 },
      createRamp: false,
      burst: 'rate',
    });

    // Act
    const idealSettings = ideal.settings();
    const strictSettings = emulator.settings();
    const tunedSettings = tuned.settings();
    await ideal.close();
    await tuned.close();

    // Assert
    expect(idealSettings.profile).toBe('ideal');
    expect(idealSettings.behaviours).toEqual(IDEAL_BEHAVIOURS);
    expect(STRICT_BEHAVIOURS).toMatchObject({
      burst: 'documented',
      dispatchRamp: { startShare: 0.2, durationMs: 30_000, idleAfterMs: 60_000 },
      createRamp: { initialPerSecond: 500, growth: 1.5, stepMs: 300_000, onExceed: 'reject' },
      throttle: { drop: 0.5, recoverMs: 30_000 },
      retryAfterJitter: 0.2,
      dispatchJitterMs: 500,
      maxScheduleAheadMs: 30 * DAY_MS,
      defaultContentType: 'application/octet-stream',
      queueTombstoneMs: 3 * DAY_MS,
    });
    expect(strictSettings.behaviours).toEqual({ ...STRICT_BEHAVIOURS, ...QUIET });
    expect(tunedSettings.behaviours).toMatchObject({
      burst: 'rate',
      createRamp: false,
      dispatchRamp: { startShare: 0.2, durationMs: 500, idleAfterMs: 60_000 },
      throttle: STRICT_BEHAVIOURS.throttle,
    });
    await expect(
      startCloudTasksEmulator({ profile: 'strict', dispatchRamp: { startShare: 0 } }),
    ).rejects.toThrow(/startShare/);
  });

  it('ignores the maxBurstSize a client sends and reports the burst it derives from the rate', async () => {
    // Arrange
    const sent = 400;

    // Act
    const slow = await newQueue({ maxDispatchesPerSecond: 10, maxBurstSize: sent });
    const one = await newQueue({ maxDispatchesPerSecond: 1, maxBurstSize: sent });
    const plain = await newQueue();
    const [got] = await client.getQueue({ name: slow.name });
    const [updated] = await client.updateQueue({
      queue: { name: slow.name, rateLimits: { maxDispatchesPerSecond: 50, maxBurstSize: 7 } },
      updateMask: { paths: ['rate_limits'] },
    });
    emulator.configure({ burst: 'rate' });
    const [byRate] = await client.getQueue({ name: slow.name });
    emulator.configure({ burst: (rate) => rate * 4 });
    const [byFunction] = await client.getQueue({ name: slow.name });

    // Assert
    expect(slow.queue.rateLimits?.maxBurstSize).toBe(2);
    expect(got.rateLimits?.maxBurstSize).toBe(2);
    expect(one.queue.rateLimits?.maxBurstSize).toBe(10);
    expect(plain.queue.rateLimits?.maxBurstSize).toBe(100);
    expect(updated.rateLimits).toMatchObject({ maxDispatchesPerSecond: 50, maxBurstSize: 10 });
    expect(byRate.rateLimits?.maxBurstSize).toBe(50);
    expect(byFunction.rateLimits?.maxBurstSize).toBe(200);
  });

  it('dispatches a backlog with the derived burst, not the one the client asked for', async () => {
    // Arrange: 30 tasks due at once on a 10/s queue that asked for a burst of 400.
    const { name } = await newQueue({ maxDispatchesPerSecond: 10, maxBurstSize: 400 });
    await client.pauseQueue({ name });
    await Promise.all(
      Array.from({ length: 30 }, () =>
        client.createTask({ parent: name, task: { httpRequest: { url: sink.url } } }),
      ),
    );

    // Act
    await client.resumeQueue({ name });
    await emulator.drain(name, 15_000);
    const times = emulator.stats(name).dispatchTimes;

    // Assert: the derived burst (2) plus 10/s over 150 ms, never the 30 a burst of 400 would let out.
    const first = times[0] ?? 0;
    const early = times.filter((t) => t - first < 150).length;
    console.info(`dispatched in the first 150 ms: ${early} (derived burst 2 at 10/s)`);
    expect(times).toHaveLength(30);
    expect(early).toBeLessThanOrEqual(5);
    expect(emulator.stats(name).burst).toBe(2);
  });

  it("keeps a deleted queue's name unusable for the tombstone window, with upstream's status", async () => {
    // Arrange
    const { name } = await newQueue();
    await client.deleteQueue({ name });

    // Act
    const recreate = failure(client.createQueue({ parent: PARENT, queue: { name } }));
    const get = failure(client.getQueue({ name }));
    const addTask = failure(client.createTask({ parent: name, task: { httpRequest: { url: sink.url } } }));
    const updateCreates = failure(client.updateQueue({ queue: { name } }));
    emulator.configure({ queueTombstoneMs: 300 });
    await sleep(400);
    const [again] = await client.createQueue({ parent: PARENT, queue: { name } });

    // Assert
    expect(await recreate).toMatchObject({
      code: status.FAILED_PRECONDITION,
      details: expect.stringContaining('existed too recently'),
    });
    expect(await get).toMatchObject({ code: status.FAILED_PRECONDITION });
    expect(await addTask).toMatchObject({ code: status.FAILED_PRECONDITION });
    expect(await updateCreates).toMatchObject({ code: status.FAILED_PRECONDITION });
    expect(again.name).toBe(name);
  });

  it('refuses a scheduleTime more than 30 days ahead and accepts one just inside', async () => {
    // Arrange
    const { name } = await newQueue();
    const now = Date.now();

    // Act
    const tooFar = failure(
      client.createTask({
        parent: name,
        task: { httpRequest: { url: sink.url }, scheduleTime: timestamp(now + 30 * DAY_MS + 60_000) },
      }),
    );
    const [inside] = await client.createTask({
      parent: name,
      task: { httpRequest: { url: sink.url }, scheduleTime: timestamp(now + 29 * DAY_MS) },
    });
    await client.deleteTask({ name: inside.name });

    // Assert
    expect(await tooFar).toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringContaining('no more than 720h in the future'),
    });
    expect(Number(inside.scheduleTime?.seconds)).toBe(Math.floor((now + 29 * DAY_MS) / 1000));
  });

  it('delivers a body sent without Content-Type as application/octet-stream', async () => {
    // Arrange
    const { name } = await newQueue();
    const body = Buffer.from('{"jobId":"7"}');

    // Act
    await client.createTask({
      parent: name,
      task: { name: `${name}/tasks/bare`, httpRequest: { url: sink.url, body } },
    });
    await client.createTask({
      parent: name,
      task: {
        name: `${name}/tasks/typed`,
        httpRequest: { url: sink.url, body, headers: { 'content-type': 'application/json' } },
      },
    });
    await client.createTask({
      parent: name,
      task: { name: `${name}/tasks/empty`, httpRequest: { url: sink.url } },
    });
    await emulator.drain(name, 5000);
    const byName = (id: string) => sink.requests.find((r) => r.headers['x-cloudtasks-taskname'] === id);

    // Assert
    expect(byName('bare')?.headers['content-type']).toBe('application/octet-stream');
    expect(byName('bare')?.body.toString()).toBe('{"jobId":"7"}');
    expect(byName('typed')?.headers['content-type']).toBe('application/json');
    expect(byName('empty')?.headers['content-type']).toBeUndefined();
  });
});
