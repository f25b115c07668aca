import { randomUUID } from 'node:crypto';
import { Firestore } from '@google-cloud/firestore';
import { CloudTasksClient } from '@google-cloud/tasks';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { counterShardsFor, itemIdForIndex, type NewItem } from '../../functions/core/jobs.js';
import { queueIdForModel } from '../../functions/core/quotas.js';
import { createStores } from '../../functions/platform/store/index.js';
import { emulatorClientOptions } from '../../functions/platform/task-queue.js';
import { call, createJob, getJob, jobsClient, stack, waitForJob } from '../helpers/e2e.js';

/**
 * What the reconciler (a duty of the scheduler tick, the `tick` function) closes, through the local cloud:
 * a job stored but never enqueued, a cancel that stopped halfway, and a client that sends the same
 * request twice.
 */
const MODEL = 'gemini-e2e-reconcile';

describe('the reconciler, through the local cloud', () => {
  // The same database the functions use, to leave a job as a crashed ingest or cancel would.
  const db = new Firestore({
    projectId: stack().projectId,
    host: inject('firestoreEmulatorHost'),
    ssl: false,
  });
  const stores = createStores(db);
  afterAll(() => db.terminate());

  it('runs a job whose ingest stored it but died before creating its enqueue task', async () => {
    // Arrange: what ingest leaves when it crashes between storing and enqueuing.
    const id = randomUUID();
    const items: NewItem[] = Array.from({ length: 5 }, (_, i) => ({
      id: itemIdForIndex(i),
      index: i,
      key: `r${i}`,
      request: { contents: [{ role: 'user', parts: [{ text: `stranded ${i}` }] }] },
      estimatedTokens: 5,
    }));
    await stores.items.createMany(id, items);
    await stores.jobs.create(
      { id, model: MODEL, mode: 'realtime', total: 5, source: 'api', counterShards: counterShardsFor(60) },
      Date.now(),
    );

    // Act
    const job = await waitForJob(id, 90_000);

    // Assert
    expect(job).toMatchObject({ status: 'succeeded', counts: { succeeded: 5, pending: 0 } });
    expect(job.reconciled.reenqueued).toBe(1);
  });

  it('finishes a cancel that stopped after turning the job cancelled', async () => {
    // Arrange: a job that runs for a while (60 RPM); its queue is paused (so no delivery ends its
    // items), then a cancel crashes halfway: the job is cancelled, its pending items are not.
    const tasks = new CloudTasksClient(emulatorClientOptions(stack().tasksEmulatorHost));
    const queue = tasks.queuePath(stack().projectId, 'us-central1', queueIdForModel(MODEL));
    const id = await createJob({ model: MODEL, prompts: Array.from({ length: 40 }, (_, i) => `slow ${i}`) });
    await waitForJob(id, 30_000, (j) => j.counts.succeeded >= 2);
    await tasks.pauseQueue({ name: queue });
    try {
      const turned = await stores.jobs.cancel(id);
      const halfway = await getJob(id);

      // Act
      const job = await waitForJob(id, 90_000, (j) => j.reconciled.cancelsResumed > 0);

      // Assert
      expect(turned?.changed).toBe(true);
      expect(halfway.status).toBe('cancelled');
      expect(halfway.counts.pending).toBeGreaterThan(20);
      expect(job.status).toBe('cancelled');
      expect(job.counts.pending).toBe(0);
      expect(job.counts.cancelled).toBeGreaterThan(20);
      expect(job.counts.succeeded + job.counts.cancelled).toBe(40);
      expect(job.reconciled.cancelsResumed).toBe(1);
    } finally {
      await tasks.resumeQueue({ name: queue });
      await tasks.close();
    }
  });

  it('gives one job for the same Idempotency-Key twice, and refuses the key with another body', async () => {
    const key = `nightly-${randomUUID()}`;
    const body = { model: MODEL, prompts: ['once only'] };

    const first = await call('POST', '/jobs', body, { 'idempotency-key': key });
    const second = await call('POST', '/jobs', body, { 'idempotency-key': key });
    const other = await call(
      'POST',
      '/jobs',
      { ...body, prompts: ['something else'] },
      { 'idempotency-key': key },
    );
    const viaClient = await jobsClient().submit(body, { idempotencyKey: key });

    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect(viaClient.id).toBe(first.body.id);
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({ error: { code: 409, status: 'FAILED_PRECONDITION' } });
  });
});
