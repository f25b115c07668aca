import { randomUUID } from 'node:crypto';
import { Firestore } from '@google-cloud/firestore';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { itemIdForIndex, type NewItem } from '../../functions/core/jobs.js';
import { createJobStore } from '../../functions/platform/job-store.js';

const QUOTA = {
  rpm: 60,
  tpm: 1_000_000,
  rpd: null,
  batch: true,
  price: { inputPerMillion: 1, outputPerMillion: 1 },
};

describe('job store in Firestore', () => {
  const db = new Firestore({ projectId: 'e2e-job-store', host: inject('firestoreEmulatorHost'), ssl: false });
  afterAll(() => db.terminate());

  async function newJob(prefix: string, model: string, total: number) {
    const store = createJobStore(db, { collectionPrefix: prefix });
    const id = randomUUID();
    const items: NewItem[] = Array.from({ length: total }, (_, i) => ({
      id: itemIdForIndex(i),
      index: i,
      key: String(i),
      request: { contents: [{ role: 'user', parts: [{ text: `p${i}` }] }] },
      estimatedTokens: 10,
    }));
    await store.createJob({ id, model, mode: 'realtime', total, source: 'api' }, items);
    return { store, id };
  }

  it('gives a cancelled job its slots back, and plans nothing more for it', async () => {
    // Arrange: at 60 RPM (about one a second) 30 items are planned over some 30 s.
    const prefix = `ledger-${randomUUID().slice(0, 8)}-`;
    const { store, id } = await newJob(prefix, 'm-cancel', 30);
    const planned = await store.reserveDispatches('m-cancel', Array(30).fill(10), QUOTA, 0.98, { jobId: id });

    // Act
    await store.cancelJob(id);
    const ledger = await store.readLedger('m-cancel');
    const afterCancel = await store.reserveDispatches('m-cancel', [10], QUOTA, 0.98, { jobId: id });
    const other = await newJob(prefix, 'm-cancel', 1);
    const [next] = await store.reserveDispatches('m-cancel', [10], QUOTA, 0.98, { jobId: other.id });

    // Assert
    const stillReserved = Object.values(ledger.requests ?? {}).reduce((a, b) => a + b, 0);
    expect(planned).toHaveLength(30);
    expect(planned.at(-1)! - planned[0]!).toBeGreaterThan(25_000);
    expect(stillReserved).toBeLessThanOrEqual(3); // the second the cancel landed in (and the burst)
    expect(afterCancel).toEqual([]);
    expect(next! - Date.now()).toBeLessThan(3000);
  });

  it('plans only up to untilMs and records the new plan of an item planned again', async () => {
    // Arrange
    const prefix = `ledger-${randomUUID().slice(0, 8)}-`;
    const { store, id } = await newJob(prefix, 'm-until', 100);
    const untilMs = Date.now() + 20_000;

    // Act
    const planned = await store.reserveDispatches('m-until', Array(100).fill(10), QUOTA, 0.98, {
      jobId: id,
      untilMs,
    });
    const claim = await store.claimItem(id, itemIdForIndex(0), 60_000);
    if (claim.outcome !== 'claimed') throw new Error(`claim: ${claim.outcome}`);
    await store.releaseItem(id, itemIdForIndex(0), claim.leaseId, planned[0]! + 90_000);
    const [item] = await store.listItems(id, { limit: 1 });

    // Assert
    expect(planned.length).toBeGreaterThan(15);
    expect(planned.length).toBeLessThan(30);
    expect(Math.max(...planned)).toBeLessThan(untilMs + 1000);
    expect(item?.plannedMs).toBe(planned[0]! + 90_000);
    expect(item?.state).toBe('pending');
  });

  it('finishes a job exactly once when the last items and the watcher all try at once', async () => {
    // Arrange: a one-item job whose item is done.
    const prefix = `finish-${randomUUID().slice(0, 8)}-`;
    const { store, id } = await newJob(prefix, 'm-finish', 1);
    const claim = await store.claimItem(id, itemIdForIndex(0), 60_000);
    if (claim.outcome !== 'claimed') throw new Error(`claim: ${claim.outcome}`);
    await store.completeItem(id, itemIdForIndex(0), claim.leaseId, {
      state: 'succeeded',
      response: { candidates: [] },
      usage: { promptTokens: 3, outputTokens: 4 },
      costUsd: 0.001,
    });

    // Act
    const results = await Promise.all(Array.from({ length: 8 }, () => store.finishJob(id, 'succeeded')));
    const job = await store.viewJob(id);

    // Assert
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    expect(job).toMatchObject({ status: 'succeeded', counts: { succeeded: 1, pending: 0 } });
    expect(job?.finishedAt).not.toBeNull();
  });
});
