import { randomUUID } from 'node:crypto';
import { CloudTasksClient } from '@google-cloud/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudTasksClientOptions } from '../../infra/local/cloud-tasks/client-options.js';
import { type CloudTasksEmulator, startCloudTasksEmulator } from '../../infra/local/cloud-tasks/server.js';
import { type HttpSink, startHttpSink } from '../helpers/http-sink.js';

const PARENT = 'projects/fanout-deadline/locations/us-central1';

/** A protobuf Timestamp as epoch ms. */
const fromTimestamp = (ts: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
  Number(ts?.seconds ?? 0) * 1000 + Math.floor(Number(ts?.nanos ?? 0) / 1e6);

/** The shortest deadline the service accepts; the test has to wait it out once. */
const DEADLINE_MS = 15_000;

describe('Cloud Tasks emulator: dispatch deadline', () => {
  let emulator: CloudTasksEmulator;
  let client: CloudTasksClient;
  let sink: HttpSink;

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

  it('cancels an attempt at dispatchDeadline, records DEADLINE_EXCEEDED and retries', async () => {
    // Arrange
    const name = `${PARENT}/queues/deadline-${randomUUID().slice(0, 8)}`;
    await client.createQueue({
      parent: PARENT,
      queue: { name, retryConfig: { minBackoff: { seconds: 2 }, maxBackoff: { seconds: 2 } } },
    });
    sink.reply((_request, index) => (index === 0 ? { hang: true } : { status: 200 }));

    // Act
    const [task] = await client.createTask({
      parent: name,
      task: { httpRequest: { url: sink.url }, dispatchDeadline: { seconds: DEADLINE_MS / 1000 } },
    });
    const deadline = Date.now() + DEADLINE_MS + 5000;
    while (sink.requests[0]?.abortedAt === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const [afterTimeout] = await client.getTask({ name: task.name });
    const [first, second] = await sink.waitForRequests(2, 5000);
    await emulator.drain(name, 5000);

    // Assert: measured from the dispatch the service records (the deadline runs from there; the
    // sink may finish reading the request a while later on a loaded machine).
    const dispatchedAt = fromTimestamp(afterTimeout.firstAttempt?.dispatchTime);
    const heldMs = (first?.abortedAt ?? 0) - dispatchedAt;
    console.info(`attempt cancelled ${heldMs} ms after dispatch (deadline ${DEADLINE_MS} ms)`);
    expect(heldMs).toBeGreaterThanOrEqual(DEADLINE_MS);
    expect(heldMs).toBeLessThan(DEADLINE_MS + 1000);
    expect(afterTimeout.dispatchCount).toBe(1);
    expect(afterTimeout.responseCount).toBe(0);
    expect(afterTimeout.lastAttempt?.responseStatus?.code).toBe(4);
    expect(second?.headers['x-cloudtasks-taskretrycount']).toBe('1');
    expect(second?.headers['x-cloudtasks-taskexecutioncount']).toBe('0');
    expect(second?.headers['x-cloudtasks-taskretryreason']).toBe('DEADLINE_EXCEEDED');
    expect(emulator.stats(name).succeeded).toBe(1);
  }, 40_000);
});
