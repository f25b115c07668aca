import { Firestore } from '@google-cloud/firestore';
import { CloudTasksClient } from '@google-cloud/tasks';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { cloudTasksClientOptions } from '../../infra/local/cloud-tasks/client-options.js';
import { type CloudTasksEmulator, startCloudTasksEmulator } from '../../infra/local/cloud-tasks/server.js';
import type { StorageUsage } from '../../infra/local/storage/operations.js';
import { type StorageEmulator, startStorageEmulator } from '../../infra/local/storage/server.js';
import { type FirestoreMeter, startFirestoreMeter } from '../../infra/local/usage/firestore-meter.js';
import { startHttpSink } from '../helpers/http-sink.js';
import { storageClientFor } from '../helpers/storage.js';

/**
 * The meters of the cost benchmark (test/bench/cost.ts), driven by the official clients only: what
 * each counts is what the service bills for the same calls.
 */
describe('the Firestore counting proxy (usage/firestore-meter.ts)', () => {
  let meter: FirestoreMeter;
  let db: Firestore;
  beforeAll(async () => {
    meter = await startFirestoreMeter(inject('firestoreEmulatorHost'));
    // The client prefers FIRESTORE_EMULATOR_HOST (the suite's emulator) to `host`: point it at the proxy.
    vi.stubEnv('FIRESTORE_EMULATOR_HOST', meter.host);
    try {
      db = new Firestore({ projectId: 'conformance-meter' });
    } finally {
      vi.unstubAllEnvs();
    }
  });
  afterAll(async () => {
    await db.terminate();
    await meter.close();
  });

  it('passes calls through unchanged and counts the documents read, written and deleted', async () => {
    // Arrange
    const col = db.collection(`m-${Date.now()}`);
    const before = meter.usage();

    // Act
    await col.doc('a').set({ n: 1 }); // 1 write
    const batch = db.batch();
    batch.set(col.doc('b'), { n: 2 });
    batch.set(col.doc('c'), { n: 3 });
    batch.delete(col.doc('a'));
    await batch.commit(); // 2 writes, 1 delete
    const got = await col.doc('b').get(); // 1 read
    const missing = await col.doc('zz').get(); // 1 read (a lookup of a missing document)
    const all = await col.orderBy('n').get(); // 2 reads
    const none = await col.where('n', '>', 100).get(); // 1 read (the minimum)
    const counted = await col.count().get(); // 1 read (up to 1,000 entries)
    await db.runTransaction(async (tx) => {
      const snap = await tx.get(col.doc('c')); // 1 read
      tx.update(col.doc('c'), { n: (snap.data()?.n as number) + 1 }); // 1 write
    });

    // Assert
    expect(got.data()).toEqual({ n: 2 });
    expect(missing.exists).toBe(false);
    expect(all.docs.map((d) => d.id)).toEqual(['b', 'c']);
    expect(none.empty).toBe(true);
    expect(counted.data().count).toBe(2);
    const after = meter.usage();
    expect(after.reads - before.reads).toBe(7);
    expect(after.writes - before.writes).toBe(4);
    expect(after.deletes - before.deletes).toBe(1);
  });
});

describe('Cloud Tasks billable operations (the emulator`s usage())', () => {
  let emulator: CloudTasksEmulator;
  let client: CloudTasksClient;
  beforeAll(async () => {
    emulator = await startCloudTasksEmulator();
    client = new CloudTasksClient(cloudTasksClientOptions(emulator.host));
  });
  afterAll(async () => {
    await client.close();
    await emulator.close();
  });

  it('counts each API call and each push delivery attempt, retries included', async () => {
    // Arrange
    const sink = await startHttpSink();
    let answered = 0;
    sink.reply(() => (answered++ === 0 ? { status: 500 } : { status: 200 }));
    const parent = 'projects/p/locations/us-central1';
    const name = `${parent}/queues/usage-${Date.now()}`;

    // Act
    await client.createQueue({
      parent,
      queue: {
        name,
        retryConfig: { minBackoff: { nanos: 100_000_000 }, maxBackoff: { nanos: 100_000_000 } },
      },
    });
    await client.createTask({ parent: name, task: { httpRequest: { url: sink.url, httpMethod: 'POST' } } });
    await emulator.drain(name, 10_000);
    await sink.close();

    // Assert: the failed attempt and its retry are both operations.
    expect(emulator.usage()).toEqual({ apiCalls: { CreateQueue: 1, CreateTask: 1 }, attempts: 2 });
  });
});

describe('Cloud Storage operations by class (GET /_emulator/usage)', () => {
  let emulator: StorageEmulator;
  beforeAll(async () => {
    emulator = await startStorageEmulator({ projectId: 'usage' });
  });
  afterAll(() => emulator.close());

  it('counts the JSON API calls the official client makes, by method and class', async () => {
    // Arrange
    const storage = storageClientFor(emulator.url, 'usage');
    const [bucket] = await storage.createBucket('usage-bucket');

    // Act
    await bucket.file('a.txt').save('hello', { resumable: false });
    await bucket.file('a.txt').download();
    await bucket.getFiles({ prefix: 'a' });
    await bucket.file('a.txt').delete();
    const usage = (await (await fetch(`${emulator.url}/_emulator/usage`)).json()) as StorageUsage;

    // Assert
    expect(usage.byMethod).toMatchObject({
      'storage.buckets.insert': 1,
      'storage.objects.insert': 1,
      'storage.objects.list': 1,
      'storage.objects.delete': 1,
    });
    expect(usage.byMethod['storage.objects.get']).toBeGreaterThanOrEqual(1);
    expect(usage.classA).toBe(3);
    expect(usage.classB).toBe(usage.byMethod['storage.objects.get']);
    expect(usage.free).toBe(1);
    expect(usage).toEqual(emulator.usage());
  });
});
