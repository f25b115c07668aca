import { randomUUID } from 'node:crypto';
import { CloudTasksClient, type protos } from '@google-cloud/tasks';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cloudTasksClientOptions } from '../../infra/local/cloud-tasks/client-options.js';
import {
  type CloudTasksEmulator,
  type SettingsChange,
  startCloudTasksEmulator,
} from '../../infra/local/cloud-tasks/server.js';
import { type HttpSink, startHttpSink } from '../helpers/http-sink.js';

type Queue = protos.google.cloud.tasks.v2.IQueue;

const PARENT = 'projects/fanout-strict-rate/locations/us-central1';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const timestamp = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

/** Every strict behaviour that moves dispatch or creation off: each test turns on its own. */
const NONE: SettingsChange = {
  profile: 'strict',
  dispatchRamp: false,
  createRamp: false,
  throttle: false,
  retryAfterJitter: 0,
  dispatchJitterMs: 0,
};

/** Dispatches within `windowMs` of the first one. */
const inFirst = (times: number[], windowMs: number) =>
  times.filter((t) => t - (times[0] ?? 0) < windowMs).length;

/**
 * The strict profile's dispatch-side behaviours. Assertions use the emulator's own records
 * (dispatch times, counters) and bounds wide enough for a loaded two-core machine: a late timer
 * can only make a queue slower, so the guards are checked where slower would not pass for them.
 */
describe('Cloud Tasks emulator, strict profile: ramp-up, 500/50/5, system throttling, no ordering', () => {
  let emulator: CloudTasksEmulator;
  let client: CloudTasksClient;
  let sink: HttpSink;

  async function newQueue(queue: Omit<Queue, 'name'> = {}): Promise<string> {
    const name = `${PARENT}/queues/r-${randomUUID().slice(0, 8)}`;
    await client.createQueue({ parent: PARENT, queue: { ...queue, name } });
    return name;
  }

  const createTasks = (parent: string, count: number, scheduleMs?: number) =>
    Promise.all(
      Array.from({ length: count }, () =>
        client.createTask({
          parent,
          task: {
            httpRequest: { url: sink.url },
            ...(scheduleMs ? { scheduleTime: timestamp(scheduleMs) } : {}),
          },
        }),
      ),
    );

  beforeAll(async () => {
    emulator = await startCloudTasksEmulator({ profile: 'strict', seed: 11 });
    client = new CloudTasksClient(cloudTasksClientOptions(emulator.host));
  });

  afterAll(async () => {
    await client.close();
    await emulator.close();
  });

  beforeEach(async () => {
    emulator.configure(NONE);
    sink = await startHttpSink();
    return () => sink.close();
  });

  it('ramps dispatch up on a new queue, after a resume and after idling, then reaches the full rate', async () => {
    // Arrange: 50/s (derived burst 10), starting at a tenth of that and at full rate after 2 s.
    emulator.configure({ dispatchRamp: { startShare: 0.1, durationMs: 2000, idleAfterMs: 60_000 } });
    const name = await newQueue({ rateLimits: { maxDispatchesPerSecond: 50 } });
    await createTasks(name, 60, Date.now() + 1500);

    // Act
    await emulator.drain(name, 15_000);
    const fresh = emulator.stats(name);
    await client.pauseQueue({ name });
    // A backlog in place before dispatch starts, so creation speed cannot limit what is measured.
    await createTasks(name, 150);
    await client.resumeQueue({ name });
    await emulator.drain(name, 15_000);
    const resumed = emulator.stats(name);
    emulator.configure({ dispatchRamp: { idleAfterMs: 300 } });
    await sleep(500);
    await createTasks(name, 1);
    await emulator.drain(name, 5000);
    const idled = emulator.stats(name);

    // Assert: without a ramp the first 500 ms would carry the burst and half a second's rate (35).
    const freshTimes = fresh.dispatchTimes;
    const resumedTimes = resumed.dispatchTimes.slice(60);
    const lastSecond = resumedTimes.filter((t) => t > (resumedTimes.at(-1) ?? 0) - 1000).length;
    console.info(
      `ramp: first 500 ms ${inFirst(freshTimes, 500)} (new), ${inFirst(resumedTimes, 500)} (resumed); last second ${lastSecond}`,
    );
    expect(fresh.ramps).toBe(1);
    expect(inFirst(freshTimes, 500)).toBeLessThanOrEqual(15);
    expect(resumed.ramps).toBe(2);
    expect(inFirst(resumedTimes, 500)).toBeLessThanOrEqual(15);
    expect(lastSecond).toBeGreaterThanOrEqual(35);
    expect(idled.ramps).toBe(3);
    expect(idled.rampShare).toBeLessThan(1);
  }, 30_000);

  it('answers RESOURCE_EXHAUSTED past the cold-queue creation limit, which grows by half a step later', async () => {
    // Arrange: the 500/50/5 rule scaled down: 20/s cold, ×1.5 per 1.5 s step, cold again after 3 s.
    emulator.configure({
      createRamp: { initialPerSecond: 20, growth: 1.5, stepMs: 1500, coldAfterMs: 3000, onExceed: 'reject' },
    });
    const name = await newQueue();
    await client.pauseQueue({ name });
    const burst = async (count: number) => {
      const outcomes = await Promise.all(
        Array.from({ length: count }, () =>
          client.createTask({ parent: name, task: { httpRequest: { url: sink.url } } }).then(
            () => 'ok' as const,
            (error: { code?: number }) => error.code,
          ),
        ),
      );
      return { ok: outcomes.filter((o) => o === 'ok').length, refused: outcomes.filter((o) => o !== 'ok') };
    };

    // Act
    const cold = await burst(60);
    const limitAfterCold = emulator.stats(name).createLimitPerSecond;
    await sleep(1600);
    const grownLimit = emulator.stats(name).createLimitPerSecond;
    const warm = await burst(60);
    await sleep(3100);
    const limitWhenColdAgain = emulator.stats(name).createLimitPerSecond;
    const stats = emulator.stats(name);

    // Assert
    console.info(`creates admitted: cold ${cold.ok}/60, after one step ${warm.ok}/60`);
    expect(limitAfterCold).toBe(20);
    expect(cold.ok).toBeGreaterThanOrEqual(20);
    expect(cold.ok).toBeLessThanOrEqual(40);
    expect(cold.refused.length).toBeGreaterThan(0);
    expect(cold.refused.every((code) => code === status.RESOURCE_EXHAUSTED)).toBe(true);
    expect(grownLimit).toBe(30);
    expect(warm.ok).toBeGreaterThanOrEqual(30);
    expect(limitWhenColdAgain).toBe(20);
    expect(stats.createsRejected).toBe(120 - cold.ok - warm.ok);
    expect(stats.tasks).toBe(cold.ok + warm.ok);
  }, 30_000);

  it('holds creation past the limit instead of refusing it when configured to slow down', async () => {
    // Arrange
    emulator.configure({ createRamp: { initialPerSecond: 20, onExceed: 'delay', maxDelayMs: 10_000 } });
    const name = await newQueue();
    await client.pauseQueue({ name });
    const started = Date.now();

    // Act
    await createTasks(name, 40);
    const elapsed = Date.now() - started;
    const stats = emulator.stats(name);

    // Assert: the second twenty wait for the first to leave the one-second window.
    expect(stats.tasks).toBe(40);
    expect(stats.createsRejected).toBe(0);
    expect(stats.createsDelayed).toBeGreaterThanOrEqual(20);
    expect(elapsed).toBeGreaterThanOrEqual(850);
  });

  it('slows the whole queue after a 429 and recovers gradually', async () => {
    // Arrange: 20/s with a burst of one second's rate; one 429 quarters the rate, recovering in 3 s.
    emulator.configure({
      burst: 'rate',
      throttle: { drop: 0.25, minShare: 0.05, recoverMs: 3000, coalesceMs: 1000 },
    });
    const name = await newQueue({
      rateLimits: { maxDispatchesPerSecond: 20 },
      retryConfig: { minBackoff: { nanos: 100e6 }, maxBackoff: { nanos: 100e6 } },
    });
    await client.pauseQueue({ name });
    await createTasks(name, 60);
    sink.reply((_request, index) => (index === 0 ? { status: 429 } : { status: 200 }));

    // Act
    await client.resumeQueue({ name });
    await sink.waitForRequests(25, 10_000);
    const during = emulator.stats(name);
    await emulator.drain(name, 20_000);
    const after = emulator.stats(name);
    await sleep(3100);
    const recovered = emulator.stats(name);

    // Assert: unthrottled, 61 attempts take 2 s (20 at once, 41 at 20/s); throttled about 3.2 s.
    const times = after.dispatchTimes;
    const spanMs = (times.at(-1) ?? 0) - (times[0] ?? 0);
    console.info(
      `61 attempts over ${spanMs} ms; throttle share while busy ${during.throttleShare.toFixed(2)}`,
    );
    expect(after.dispatches).toBe(61);
    expect(after.throttleDrops).toBe(1);
    expect(during.throttleShare).toBeLessThan(0.9);
    expect(spanMs).toBeGreaterThanOrEqual(2600);
    expect(recovered.throttleShare).toBe(1);
    expect(recovered.enforcedRate).toBe(20);
  }, 30_000);

  it('considers Retry-After without obeying it to the millisecond', async () => {
    // Arrange
    emulator.configure({ retryAfterJitter: 0.5 });
    const name = await newQueue({
      retryConfig: { minBackoff: { nanos: 100e6 }, maxBackoff: { nanos: 100e6 } },
    });
    sink.reply((request) =>
      request.headers['x-cloudtasks-taskretrycount'] === '0'
        ? { status: 429, headers: { 'Retry-After': '2' } }
        : { status: 200 },
    );

    // Act
    await createTasks(name, 16);
    await emulator.drain(name, 15_000);
    const gaps = Object.values(emulator.stats(name).attemptTimesByTask).map((t) => (t[1] ?? 0) - (t[0] ?? 0));

    // Assert: 2 s × [0.5, 1.5], some of them earlier than the header said.
    console.info(`Retry-After 2 s, waited (ms): ${gaps.sort((a, b) => a - b).join(', ')}`);
    expect(gaps).toHaveLength(16);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(950);
    expect(Math.max(...gaps)).toBeLessThan(3500);
    expect(gaps.some((gap) => gap < 1900)).toBe(true);
    expect(Math.max(...gaps) - Math.min(...gaps)).toBeGreaterThanOrEqual(400);
  }, 20_000);

  it('gives no ordering among tasks due in the same window, never dispatching one early', async () => {
    // Arrange
    emulator.configure({ dispatchJitterMs: 1000 });
    const name = await newQueue();
    const dueMs = Date.now() + 1000;
    for (let i = 0; i < 40; i++) {
      await client.createTask({
        parent: name,
        task: {
          name: `${name}/tasks/t${String(i).padStart(2, '0')}`,
          httpRequest: { url: sink.url },
          scheduleTime: timestamp(dueMs),
        },
      });
    }

    // Act
    await emulator.drain(name, 10_000);
    const order = sink.requests.map((r) => r.headers['x-cloudtasks-taskname']);
    const created = [...order].sort();

    // Assert
    const inversions = order.filter((id, i) => i > 0 && (id ?? '') < (order[i - 1] ?? '')).length;
    console.info(`40 tasks due at the same instant: ${inversions} out of creation order`);
    expect(order).toHaveLength(40);
    expect(order).not.toEqual(created);
    expect(sink.requests.every((r) => r.receivedAt >= dueMs)).toBe(true);
    expect(sink.requests.every((r) => Number(r.headers['x-cloudtasks-tasketa']) * 1000 === dueMs)).toBe(true);
  }, 20_000);
});
