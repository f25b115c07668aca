import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { CloudTasksClient, type protos } from '@google-cloud/tasks';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cloudTasksClientOptions } from '../../infra/local/cloud-tasks/client-options.js';
import { decodeLocalOidcToken } from '../../infra/local/cloud-tasks/oidc.js';
import { type CloudTasksEmulator, startCloudTasksEmulator } from '../../infra/local/cloud-tasks/server.js';
import { freePort } from '../../infra/local/ports.js';
import { type HttpSink, startHttpSink } from '../helpers/http-sink.js';

type Queue = protos.google.cloud.tasks.v2.IQueue;

const PARENT = 'projects/fanout-test/locations/us-central1';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The error a call failed with (undefined on success), observed at once so none goes unhandled. */
const failure = (call: Promise<unknown>): Promise<unknown> =>
  call.then(
    () => undefined,
    (error: unknown) => error,
  );

describe('Cloud Tasks emulator: queues and tasks through the official client', () => {
  let emulator: CloudTasksEmulator;
  let client: CloudTasksClient;
  let sink: HttpSink;

  async function newQueue(queue: Omit<Queue, 'name'> = {}): Promise<string> {
    const name = `${PARENT}/queues/q-${randomUUID().slice(0, 8)}`;
    await client.createQueue({ parent: PARENT, queue: { ...queue, name } });
    return name;
  }

  beforeAll(async () => {
    emulator = await startCloudTasksEmulator();
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

  it('creates a queue with the service defaults', async () => {
    // Arrange
    const name = `${PARENT}/queues/defaults-${randomUUID().slice(0, 8)}`;

    // Act
    const [queue] = await client.createQueue({ parent: PARENT, queue: { name } });

    // Assert
    expect(queue.name).toBe(name);
    expect(queue.state).toBe('RUNNING');
    expect(queue.rateLimits).toMatchObject({
      maxDispatchesPerSecond: 500,
      maxBurstSize: 100,
      maxConcurrentDispatches: 1000,
    });
    expect(queue.retryConfig).toMatchObject({ maxAttempts: 100, maxDoublings: 16 });
    expect(Number(queue.retryConfig?.minBackoff?.nanos)).toBe(100_000_000);
    expect(Number(queue.retryConfig?.maxBackoff?.seconds)).toBe(3600);
    expect(Number(queue.retryConfig?.maxRetryDuration?.seconds ?? 0)).toBe(0);
  });

  it('gets, lists with pages and a state filter, updates with a mask and deletes queues', async () => {
    // Arrange
    const parent = `projects/list-${randomUUID().slice(0, 8)}/locations/europe-west1`;
    const names = ['a', 'b', 'c'].map((id) => `${parent}/queues/${id}`);
    for (const name of names) await client.createQueue({ parent, queue: { name } });
    await client.pauseQueue({ name: names[1] });

    // Act
    const [fetched] = await client.getQueue({ name: names[0] });
    const [firstPage, , firstResponse] = await client.listQueues(
      { parent, pageSize: 2 },
      { autoPaginate: false },
    );
    const [secondPage] = await client.listQueues(
      { parent, pageSize: 2, pageToken: firstResponse?.nextPageToken ?? '' },
      { autoPaginate: false },
    );
    const [paused] = await client.listQueues({ parent, filter: 'state: PAUSED' });
    const [updated] = await client.updateQueue({
      queue: { name: names[0], rateLimits: { maxDispatchesPerSecond: 10 }, retryConfig: { maxAttempts: 3 } },
      updateMask: { paths: ['rate_limits.max_dispatches_per_second'] },
    });
    await client.deleteQueue({ name: names[2] });
    const [remaining] = await client.listQueues({ parent });

    // Assert
    expect(fetched.name).toBe(names[0]);
    expect(firstPage.map((q) => q.name)).toEqual(names.slice(0, 2));
    expect(secondPage.map((q) => q.name)).toEqual(names.slice(2));
    expect(paused.map((q) => q.name)).toEqual([names[1]]);
    expect(updated.rateLimits).toMatchObject({
      maxDispatchesPerSecond: 10,
      maxBurstSize: 2,
      maxConcurrentDispatches: 1000,
    });
    expect(updated.retryConfig?.maxAttempts).toBe(100);
    expect(remaining.map((q) => q.name)).toEqual(names.slice(0, 2));
    await expect(client.getQueue({ name: names[2] })).rejects.toMatchObject({ code: status.NOT_FOUND });
  });

  it('answers bad queue requests with the real status codes', async () => {
    // Arrange
    const name = await newQueue();

    // Act
    const duplicate = failure(client.createQueue({ parent: PARENT, queue: { name } }));
    const tooFast = failure(
      client.createQueue({
        parent: PARENT,
        queue: { name: `${PARENT}/queues/fast`, rateLimits: { maxDispatchesPerSecond: 501 } },
      }),
    );
    const tooConcurrent = failure(
      client.createQueue({
        parent: PARENT,
        queue: { name: `${PARENT}/queues/wide`, rateLimits: { maxConcurrentDispatches: 5001 } },
      }),
    );
    const badName = failure(
      client.createQueue({ parent: PARENT, queue: { name: `${PARENT}/queues/bad_name` } }),
    );
    const missing = failure(client.getQueue({ name: `${PARENT}/queues/missing` }));

    // Assert
    expect(await duplicate).toMatchObject({ code: status.ALREADY_EXISTS });
    expect(await tooFast).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(await tooConcurrent).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(await badName).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(await missing).toMatchObject({ code: status.NOT_FOUND });
  });

  it('holds tasks while paused, dispatches on resume and purges', async () => {
    // Arrange
    const name = await newQueue();
    const [paused] = await client.pauseQueue({ name });
    await client.createTask({ parent: name, task: { httpRequest: { url: `${sink.url}/held` } } });

    // Act
    await sleep(300);
    const seenWhilePaused = sink.requests.length;
    const [resumed] = await client.resumeQueue({ name });
    await emulator.drain(name, 5000);
    await client.pauseQueue({ name });
    for (let i = 0; i < 3; i++) {
      await client.createTask({ parent: name, task: { httpRequest: { url: `${sink.url}/purged` } } });
    }
    const [purged] = await client.purgeQueue({ name });
    const [left] = await client.listTasks({ parent: name });
    await client.resumeQueue({ name });
    await sleep(300);

    // Assert
    expect(paused.state).toBe('PAUSED');
    expect(seenWhilePaused).toBe(0);
    expect(resumed.state).toBe('RUNNING');
    expect(sink.requests.map((r) => r.path)).toEqual(['/held']);
    expect(purged.purgeTime?.seconds).toBeTruthy();
    expect(left).toEqual([]);
  });

  it('creates named and unnamed tasks and rejects a reused name, also after it ran or was deleted', async () => {
    // Arrange
    const name = await newQueue();
    const taskName = `${name}/tasks/item-1`;
    const deletedName = `${name}/tasks/item-2`;
    await client.pauseQueue({ name });

    // Act
    const [named] = await client.createTask({
      parent: name,
      task: { name: taskName, httpRequest: { url: sink.url } },
    });
    const [unnamed] = await client.createTask({ parent: name, task: { httpRequest: { url: sink.url } } });
    const whileQueued = failure(
      client.createTask({ parent: name, task: { name: taskName, httpRequest: { url: sink.url } } }),
    );
    await client.createTask({ parent: name, task: { name: deletedName, httpRequest: { url: sink.url } } });
    await client.deleteTask({ name: deletedName });
    await client.resumeQueue({ name });
    await emulator.drain(name, 5000);
    const afterRun = failure(
      client.createTask({ parent: name, task: { name: taskName, httpRequest: { url: sink.url } } }),
    );
    const afterDelete = failure(
      client.createTask({ parent: name, task: { name: deletedName, httpRequest: { url: sink.url } } }),
    );

    // Assert
    expect(named.name).toBe(taskName);
    expect(named.dispatchCount).toBe(0);
    expect(unnamed.name).toMatch(new RegExp(`^${name}/tasks/\\d+$`));
    expect(await whileQueued).toMatchObject({ code: status.ALREADY_EXISTS });
    expect(await afterRun).toMatchObject({ code: status.ALREADY_EXISTS });
    expect(await afterDelete).toMatchObject({ code: status.ALREADY_EXISTS });
    expect(sink.requests).toHaveLength(2);
  });

  it('frees a task name once the configured dedup window has passed', async () => {
    // Arrange
    const name = await newQueue();
    const taskName = `${name}/tasks/short-window`;
    emulator.configure({ dedupWindowMs: 200 });
    try {
      await client.createTask({ parent: name, task: { name: taskName, httpRequest: { url: sink.url } } });
      await emulator.drain(name, 5000);
      await sleep(300);

      // Act
      const [again] = await client.createTask({
        parent: name,
        task: { name: taskName, httpRequest: { url: sink.url } },
      });

      // Assert
      expect(again.name).toBe(taskName);
    } finally {
      emulator.configure({ dedupWindowMs: 3_600_000 });
    }
  });

  it('gets and lists tasks in BASIC and FULL views, deletes them and runs one now even when paused', async () => {
    // Arrange
    const name = await newQueue();
    await client.pauseQueue({ name });
    const body = Buffer.from('{"item":1}');
    const [task] = await client.createTask({
      parent: name,
      task: {
        httpRequest: { url: `${sink.url}/run`, body, headers: { 'Content-Type': 'application/json' } },
      },
    });
    const [other] = await client.createTask({
      parent: name,
      task: { httpRequest: { url: `${sink.url}/other` } },
    });

    // Act
    const [basic] = await client.getTask({ name: task.name });
    const [full] = await client.getTask({ name: task.name, responseView: 'FULL' });
    const [listed] = await client.listTasks({ parent: name, responseView: 'FULL' });
    await client.deleteTask({ name: other.name });
    const [ran] = await client.runTask({ name: task.name });
    await sink.waitForRequests(1, 5000);
    await emulator.drain(name, 5000);

    // Assert
    expect(basic.view).toBe('BASIC');
    expect(Buffer.from(basic.httpRequest?.body ?? new Uint8Array()).length).toBe(0);
    expect(full.view).toBe('FULL');
    expect(Buffer.from(full.httpRequest?.body ?? new Uint8Array()).toString()).toBe('{"item":1}');
    expect(full.dispatchDeadline?.seconds).toBe('600');
    expect(listed.map((t) => t.name).sort()).toEqual([task.name, other.name].sort());
    expect(ran.dispatchCount).toBe(1);
    expect(ran.firstAttempt?.dispatchTime).toBeTruthy();
    expect(sink.requests.map((r) => r.path)).toEqual(['/run']);
    expect(sink.requests[0]?.body.toString()).toBe('{"item":1}');
    await expect(client.getTask({ name: task.name })).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(client.getTask({ name: other.name })).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(client.runTask({ name: other.name })).rejects.toMatchObject({ code: status.NOT_FOUND });
  });

  it('does not dispatch a task before its schedule time', async () => {
    // Arrange
    const name = await newQueue();
    const at = Date.now() + 700;

    // Act
    await client.createTask({
      parent: name,
      task: {
        httpRequest: { url: sink.url },
        scheduleTime: { seconds: Math.floor(at / 1000), nanos: (at % 1000) * 1e6 },
      },
    });
    const [request] = await sink.waitForRequests(1, 5000);

    // Assert
    expect(request?.receivedAt).toBeGreaterThanOrEqual(at);
    expect(Number(request?.headers['x-cloudtasks-tasketa']) * 1000).toBeCloseTo(at, -1);
  });

  it('rejects invalid tasks: oversize payload, deadline out of range, body on GET, unknown queue', async () => {
    // Arrange
    const name = await newQueue();
    const url = sink.url;

    // Act
    const oversize = failure(
      client.createTask({ parent: name, task: { httpRequest: { url, body: Buffer.alloc(101 * 1024) } } }),
    );
    const shortDeadline = failure(
      client.createTask({ parent: name, task: { httpRequest: { url }, dispatchDeadline: { seconds: 5 } } }),
    );
    const longDeadline = failure(
      client.createTask({
        parent: name,
        task: { httpRequest: { url }, dispatchDeadline: { seconds: 1801 } },
      }),
    );
    const getWithBody = failure(
      client.createTask({
        parent: name,
        task: { httpRequest: { url, httpMethod: 'GET', body: Buffer.from('x') } },
      }),
    );
    const noQueue = failure(
      client.createTask({ parent: `${PARENT}/queues/nope`, task: { httpRequest: { url } } }),
    );

    // Assert
    expect(await oversize).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(await shortDeadline).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(await longDeadline).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(await getWithBody).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(await noQueue).toMatchObject({ code: status.NOT_FOUND });
  });

  it('delivers method, headers, body, the X-CloudTasks-* set and an OIDC token to the target', async () => {
    // Arrange
    const name = await newQueue();
    const queueId = name.split('/').pop();
    const email = 'tasks-invoker@fanout-test.iam.gserviceaccount.com';
    const url = `${sink.url}/work?x=1`;

    // Act
    const [task] = await client.createTask({
      parent: name,
      task: {
        name: `${name}/tasks/job-7_item-3`,
        httpRequest: {
          url,
          httpMethod: 'PUT',
          headers: { 'Content-Type': 'application/json', 'X-Trace': 'abc', 'User-Agent': 'ignored' },
          body: Buffer.from('{"jobId":"7"}'),
          oidcToken: { serviceAccountEmail: email, audience: 'https://worker.example' },
        },
      },
    });
    await client.createTask({
      parent: name,
      task: { httpRequest: { url, oidcToken: { serviceAccountEmail: email } } },
    });
    const [first, second] = await sink.waitForRequests(2, 5000);

    // Assert
    expect(first?.method).toBe('PUT');
    expect(first?.path).toBe('/work?x=1');
    expect(first?.body.toString()).toBe('{"jobId":"7"}');
    expect(first?.headers).toMatchObject({
      'content-type': 'application/json',
      'x-trace': 'abc',
      'user-agent': 'Google-Cloud-Tasks',
      'x-cloudtasks-queuename': queueId,
      'x-cloudtasks-taskname': 'job-7_item-3',
      'x-cloudtasks-taskretrycount': '0',
      'x-cloudtasks-taskexecutioncount': '0',
    });
    expect(first?.headers['x-cloudtasks-taskpreviousresponse']).toBeUndefined();
    expect(Number(first?.headers['x-cloudtasks-tasketa'])).toBeCloseTo(
      Number(task.scheduleTime?.seconds),
      -1,
    );
    const claims = decodeLocalOidcToken(first?.headers.authorization, {
      audience: 'https://worker.example',
      email,
    });
    expect(claims).toMatchObject({ iss: 'https://accounts.google.com', email_verified: true });
    expect(first?.headers.authorization?.endsWith('.')).toBe(true);
    expect(decodeLocalOidcToken(second?.headers.authorization).aud).toBe(url);
  });

  it('runs as a process that prints a ready line and stops on SIGTERM', async () => {
    // Arrange
    const port = await freePort();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'infra/local/cloud-tasks/main.ts', '--port', String(port)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const lines = createInterface({ input: child.stdout });
    const ready = await new Promise<string>((resolve) => lines.once('line', resolve));
    const processClient = new CloudTasksClient(cloudTasksClientOptions(`127.0.0.1:${port}`));

    // Act
    const [queue] = await processClient.createQueue({
      parent: PARENT,
      queue: { name: `${PARENT}/queues/from-process` },
    });
    await processClient.close();
    child.kill('SIGTERM');

    // Assert
    expect(JSON.parse(ready.replace(/^ready: /, ''))).toEqual({ host: `127.0.0.1:${port}`, port });
    expect(queue.state).toBe('RUNNING');
    expect(await exited).toBe(0);
  });
});
