import { randomUUID } from 'node:crypto';
import { CloudTasksClient, type protos } from '@google-cloud/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudTasksClientOptions } from '../../infra/local/cloud-tasks/client-options.js';
import { type CloudTasksEmulator, startCloudTasksEmulator } from '../../infra/local/cloud-tasks/server.js';
import { type HttpSink, startHttpSink } from '../helpers/http-sink.js';

type RateLimits = protos.google.cloud.tasks.v2.IRateLimits;

const PARENT = 'projects/fanout-rate/locations/us-central1';

describe('Cloud Tasks emulator: rate limits', () => {
  let emulator: CloudTasksEmulator;
  let client: CloudTasksClient;
  let sink: HttpSink;

  /** A paused queue holding `count` tasks, so dispatch starts from a full backlog on resume. */
  async function backlog(rateLimits: RateLimits, count: number): Promise<string> {
    const name = `${PARENT}/queues/rate-${randomUUID().slice(0, 8)}`;
    await client.createQueue({ parent: PARENT, queue: { name, rateLimits } });
    await client.pauseQueue({ name });
    for (let start = 0; start < count; start += 50) {
      const batch = Array.from({ length: Math.min(50, count - start) }, (_, i) =>
        client.createTask({ parent: name, task: { httpRequest: { url: `${sink.url}/t${start + i}` } } }),
      );
      await Promise.all(batch);
    }
    return name;
  }

  beforeAll(async () => {
    emulator = await startCloudTasksEmulator();
    client = new CloudTasksClient(cloudTasksClientOptions(emulator.host));
    sink = await startHttpSink();
  });

  afterAll(async () => {
    await client.close();
    await emulator.close();
    await sink.close();
  });

  it('dispatches at maxDispatchesPerSecond once the initial burst is spent (10 s at 20/s)', async () => {
    // Arrange
    const rate = 20;
    const burst = 5;
    const measured = 200;
    const name = await backlog({ maxDispatchesPerSecond: rate, maxBurstSize: burst }, burst + measured + 1);
    const [queue] = await client.getQueue({ name });

    // Act
    await client.resumeQueue({ name });
    await emulator.drain(name, 20_000);
    const times = emulator.stats(name).dispatchTimes;
    const arrivals = sink.requests.filter(
      (r) => r.headers['x-cloudtasks-queuename'] === name.split('/').pop(),
    );
    const arrivalTimes = arrivals.map((r) => r.receivedAt).sort((a, b) => a - b);

    // Assert
    const windowRate = (t: number[]) => measured / (((t[burst + measured] ?? 0) - (t[burst] ?? 0)) / 1000);
    const emulatorRate = windowRate(times);
    const targetRate = windowRate(arrivalTimes);
    console.info(
      `dispatch rate over ${measured} dispatches: emulator ${emulatorRate.toFixed(2)}/s, target ${targetRate.toFixed(2)}/s`,
    );
    expect(queue.rateLimits?.maxBurstSize).toBe(burst);
    expect((times[burst - 1] ?? 0) - (times[0] ?? 0)).toBeLessThan(40);
    expect(emulatorRate).toBeGreaterThan(rate * 0.95);
    expect(emulatorRate).toBeLessThan(rate * 1.05);
    expect(targetRate).toBeGreaterThan(rate * 0.95);
    expect(targetRate).toBeLessThan(rate * 1.05);
  }, 40_000);

  it('never has more than maxConcurrentDispatches attempts outstanding', async () => {
    // Arrange
    const limit = 5;
    const tasks = 60;
    const name = await backlog({ maxDispatchesPerSecond: 500, maxConcurrentDispatches: limit }, tasks);
    const queueId = name.split('/').pop();
    let open = 0;
    let peakAtTarget = 0;
    sink.reply((request) => {
      if (request.headers['x-cloudtasks-queuename'] !== queueId) return { status: 200 };
      open++;
      peakAtTarget = Math.max(peakAtTarget, open);
      setTimeout(() => open--, 100);
      return { status: 200, delayMs: 100 };
    });
    const started = Date.now();

    // Act
    await client.resumeQueue({ name });
    await emulator.drain(name, 20_000);
    const elapsed = Date.now() - started;
    const stats = emulator.stats(name);

    // Assert
    console.info(
      `concurrency: peak ${stats.peakConcurrency} in the emulator, ${peakAtTarget} at the target (limit ${limit})`,
    );
    expect(stats.peakConcurrency).toBe(limit);
    expect(peakAtTarget).toBeLessThanOrEqual(limit);
    expect(stats.succeeded).toBe(tasks);
    expect(elapsed).toBeGreaterThanOrEqual((tasks / limit) * 100 - 50);
  }, 40_000);
});
