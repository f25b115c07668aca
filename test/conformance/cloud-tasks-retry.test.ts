import { randomUUID } from 'node:crypto';
import { CloudTasksClient, type protos } from '@google-cloud/tasks';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cloudTasksClientOptions } from '../../infra/local/cloud-tasks/client-options.js';
import { type CloudTasksEmulator, startCloudTasksEmulator } from '../../infra/local/cloud-tasks/server.js';
import { type HttpSink, type SinkRequest, startHttpSink } from '../helpers/http-sink.js';

type RetryConfig = protos.google.cloud.tasks.v2.IRetryConfig;

const PARENT = 'projects/fanout-retry/locations/us-central1';

/** Milliseconds as a protobuf Duration. */
const duration = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

const header = (request: SinkRequest | undefined, name: string) => request?.headers[name.toLowerCase()];

const gaps = (times: number[]) => times.slice(1).map((t, i) => t - (times[i] ?? 0));

/**
 * Slack for timers and round trips on a loaded machine: attempts may come late, never early (the
 * first retry also waits for a fresh connection's answer, often 100–250 ms under load).
 */
const LATE_SLACK_MS = 400;

describe('Cloud Tasks emulator: retries, Retry-After and duplicate delivery', () => {
  let emulator: CloudTasksEmulator;
  let client: CloudTasksClient;
  let sink: HttpSink;

  async function newQueue(retryConfig: RetryConfig): Promise<string> {
    const name = `${PARENT}/queues/retry-${randomUUID().slice(0, 8)}`;
    await client.createQueue({ parent: PARENT, queue: { name, retryConfig } });
    return name;
  }

  beforeAll(async () => {
    emulator = await startCloudTasksEmulator({ seed: 7 });
    client = new CloudTasksClient(cloudTasksClientOptions(emulator.host));
  });

  afterAll(async () => {
    await client.close();
    await emulator.close();
  });

  beforeEach(async () => {
    sink = await startHttpSink();
    return () => sink.close();
  });

  it('backs off from minBackoff, doubling maxDoublings times, then linearly up to maxBackoff, and deletes after maxAttempts', async () => {
    // Arrange
    const name = await newQueue({
      maxAttempts: 7,
      minBackoff: duration(100),
      maxBackoff: duration(1000),
      maxDoublings: 2,
    });
    sink.reply(() => ({ status: 500 }));

    // Act
    const [task] = await client.createTask({ parent: name, task: { httpRequest: { url: sink.url } } });
    await emulator.drain(name, 15_000);
    const taskId = task.name?.split('/').pop() ?? '';
    const stats = emulator.stats(name);
    const observed = gaps(stats.attemptTimesByTask[taskId] ?? []);

    // Assert
    const expected = [100, 200, 400, 800, 1000, 1000];
    console.info(`backoff gaps (ms): expected ${expected.join(', ')}; observed ${observed.join(', ')}`);
    expect(observed).toHaveLength(expected.length);
    observed.forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual(expected[i] ?? 0);
      expect(gap).toBeLessThan((expected[i] ?? 0) + LATE_SLACK_MS);
    });
    expect(stats.exhausted).toBe(1);
    expect(sink.requests.map((r) => header(r, 'X-CloudTasks-TaskRetryCount'))).toEqual([
      '0',
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
    ]);
    expect(
      sink.requests.slice(1).every((r) => header(r, 'X-CloudTasks-TaskPreviousResponse') === '500'),
    ).toBe(true);
    expect(sink.requests.every((r) => header(r, 'X-CloudTasks-TaskExecutionCount') === '0')).toBe(true);
    await expect(client.getTask({ name: task.name })).rejects.toMatchObject({ code: status.NOT_FOUND });
  });

  it('counts 4xx responses as executions and reports the last attempt on the task', async () => {
    // Arrange
    const name = await newQueue({ maxAttempts: 3, minBackoff: duration(300), maxBackoff: duration(300) });
    sink.reply(() => ({ status: 404 }));

    // Act
    const [task] = await client.createTask({ parent: name, task: { httpRequest: { url: sink.url } } });
    await sink.waitForRequests(2, 5000);
    const [midway] = await client.getTask({ name: task.name });
    await emulator.drain(name, 5000);

    // Assert
    expect(sink.requests.map((r) => header(r, 'X-CloudTasks-TaskExecutionCount'))).toEqual(['0', '1', '2']);
    expect(midway.dispatchCount).toBe(2);
    expect(midway.responseCount).toBeGreaterThanOrEqual(1);
    expect(midway.firstAttempt?.dispatchTime).toBeTruthy();
    expect(emulator.stats(name).attemptsByTask[task.name?.split('/').pop() ?? '']).toBe(3);
  });

  it('stops retrying once maxRetryDuration has passed when attempts are unlimited', async () => {
    // Arrange
    const name = await newQueue({
      maxAttempts: -1,
      maxRetryDuration: duration(1000),
      minBackoff: duration(200),
      maxBackoff: duration(200),
    });
    sink.reply(() => ({ status: 503 }));

    // Act
    const [task] = await client.createTask({ parent: name, task: { httpRequest: { url: sink.url } } });
    await emulator.drain(name, 10_000);
    const times = emulator.stats(name).attemptTimesByTask[task.name?.split('/').pop() ?? ''] ?? [];
    const first = times[0] ?? 0;

    // Assert
    expect(times.length).toBeGreaterThanOrEqual(4);
    expect((times.at(-1) ?? 0) - first).toBeGreaterThanOrEqual(950);
    expect((times.at(-2) ?? 0) - first).toBeLessThan(1000);
  });

  it('waits at least Retry-After (seconds) after a 429 before the next attempt', async () => {
    // Arrange
    const name = await newQueue({ minBackoff: duration(100), maxBackoff: duration(100) });
    sink.reply((_request, index) =>
      index === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200 },
    );

    // Act
    await client.createTask({ parent: name, task: { httpRequest: { url: sink.url } } });
    await emulator.drain(name, 10_000);
    const [first, second] = sink.requests;

    // Assert
    expect((second?.receivedAt ?? 0) - (first?.receivedAt ?? 0)).toBeGreaterThanOrEqual(1000);
    expect((second?.receivedAt ?? 0) - (first?.receivedAt ?? 0)).toBeLessThan(1000 + LATE_SLACK_MS + 100);
    expect(header(second, 'X-CloudTasks-TaskPreviousResponse')).toBe('429');
    expect(header(second, 'X-CloudTasks-TaskRetryCount')).toBe('1');
    expect(header(second, 'X-CloudTasks-TaskExecutionCount')).toBe('1');
    expect(header(second, 'X-CloudTasks-TaskRetryReason')).toBeTruthy();
  });

  it('waits at least Retry-After (HTTP date) after a 503 before the next attempt', async () => {
    // Arrange
    const name = await newQueue({ minBackoff: duration(100), maxBackoff: duration(100) });
    let notBefore = 0;
    sink.reply((_request, index) => {
      if (index > 0) return { status: 200 };
      const at = new Date(Date.now() + 2000);
      notBefore = Math.floor(at.getTime() / 1000) * 1000;
      return { status: 503, headers: { 'Retry-After': at.toUTCString() } };
    });

    // Act
    await client.createTask({ parent: name, task: { httpRequest: { url: sink.url } } });
    await emulator.drain(name, 10_000);
    const [, second] = sink.requests;

    // Assert
    expect(second?.receivedAt ?? 0).toBeGreaterThanOrEqual(notBefore);
    expect(header(second, 'X-CloudTasks-TaskPreviousResponse')).toBe('503');
    expect(header(second, 'X-CloudTasks-TaskExecutionCount')).toBe('0');
  });

  it('delivers every attempt twice with duplicateShare 1, and a seeded share reproducibly', async () => {
    // Arrange
    const everyTime = await newQueue({});
    const sampledA = await newQueue({});
    const sampledB = await newQueue({});
    const createTasks = async (name: string, count: number) => {
      for (let i = 0; i < count; i++) {
        await client.createTask({
          parent: name,
          task: { name: `${name}/tasks/t${i}`, httpRequest: { url: sink.url } },
        });
      }
    };

    // Act
    emulator.configure({ duplicateShare: 1 });
    await createTasks(everyTime, 5);
    await emulator.drain(everyTime, 5000);
    emulator.configure({ duplicateShare: 0.3, seed: 42 });
    await createTasks(sampledA, 100);
    await emulator.drain(sampledA, 10_000);
    emulator.configure({ duplicateShare: 0.3, seed: 42 });
    await createTasks(sampledB, 100);
    await emulator.drain(sampledB, 10_000);
    emulator.configure({ duplicateShare: 0 });

    // Assert
    const byQueue = (name: string) =>
      sink.requests.filter((r) => header(r, 'X-CloudTasks-QueueName') === name.split('/').pop());
    const twice = byQueue(everyTime);
    expect(twice).toHaveLength(10);
    for (let i = 0; i < 5; i++) {
      const copies = twice.filter((r) => header(r, 'X-CloudTasks-TaskName') === `t${i}`);
      expect(copies).toHaveLength(2);
      expect(copies[0]?.headers['x-cloudtasks-taskretrycount']).toBe(
        copies[1]?.headers['x-cloudtasks-taskretrycount'],
      );
    }
    const a = emulator.stats(sampledA);
    const b = emulator.stats(sampledB);
    expect(emulator.stats(everyTime).duplicates).toBe(5);
    expect(a.duplicates).toBeGreaterThan(15);
    expect(a.duplicates).toBeLessThan(45);
    expect(b.duplicates).toBe(a.duplicates);
    expect(byQueue(sampledA)).toHaveLength(100 + a.duplicates);
  });
});
