import { randomUUID } from 'node:crypto';
import { Firestore, Timestamp } from '@google-cloud/firestore';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { itemIdForIndex, type NewItem } from '../../functions/core/jobs.js';
import { createStores } from '../../functions/platform/store/index.js';
import { readItemIndexes } from '../helpers/firestore-indexes.js';

/**
 * The items' indexes (infra/terraform/firestore.tf) against what the items store really writes as
 * deliveries go on: Firestore limits an index of a value that only grows to 500 writes a second
 * (https://cloud.google.com/firestore/docs/solutions/shard-timestamp). Items are taken through a
 * delivery's writes one after another, as time passes (due time set, leased, given back with a new
 * plan, leased again, renewed, settled); every field whose value grows from each item to the next
 * must have no single-field index, and every composite index holding it must start with the
 * item's sweep shard.
 */
const host = inject('firestoreEmulatorHost') ?? process.env.FIRESTORE_EMULATOR_HOST;
const db = new Firestore({ projectId: 'item-indexes', host, ssl: false });
afterAll(() => db.terminate());

/** A document's values by field path (maps flattened; timestamps as microseconds). */
function flatten(data: Record<string, unknown>, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [name, value] of Object.entries(data)) {
    const path = `${prefix}${name}`;
    if (value instanceof Timestamp) out.set(path, value.seconds * 1e6 + value.nanoseconds / 1e3);
    else if (value && typeof value === 'object' && !Array.isArray(value))
      for (const [p, v] of flatten(value as Record<string, unknown>, `${path}.`)) out.set(p, v);
    else out.set(path, value);
  }
  return out;
}

describe('the items indexes against the store (firestore.tf)', () => {
  it('keep every value that grows with time out of single-field indexes, and shard its composites', async () => {
    // Arrange: one job of 12 items
    const prefix = `indexes-${randomUUID().slice(0, 8)}-`;
    const stores = createStores(db, { collectionPrefix: prefix });
    const jobId = 'grows';
    const n = 12;
    const items: NewItem[] = Array.from({ length: n }, (_, i) => ({
      id: itemIdForIndex(i),
      index: i,
      key: `row-${i}`,
      request: { contents: [{ role: 'user', parts: [{ text: `prompt ${i}` }] }] },
      estimatedTokens: 5,
    }));
    await stores.items.createMany(jobId, items);
    await stores.jobs.create(
      { id: jobId, model: 'm', mode: 'realtime', total: n, source: 'api', counterShards: 1 },
      Date.now() + 60_000,
    );

    // Act: each item through a delivery's writes, one item after another, as time goes on; each
    // field's value noted after every write
    const seen = new Map<string, number[]>();
    const note = async (i: number) => {
      const snap = await db.doc(`${prefix}jobs/${jobId}/items/${itemIdForIndex(i)}`).get();
      for (const [field, value] of flatten(snap.data()!)) {
        if (typeof value !== 'number') continue;
        const values = seen.get(field) ?? [];
        values[i] = value; // the last value each item's writes left
        seen.set(field, values);
      }
      const [item] = await stores.items.getWithJob(jobId, itemIdForIndex(i));
      return item!;
    };
    for (let i = 0; i < n; i++) {
      const now = () => Date.now();
      const ref = (version: string) => ({ jobId, itemId: itemIdForIndex(i), version, shards: 1 });
      let item = await note(i);
      await stores.items.setDue(jobId, [
        { itemId: item.id, version: item.version, dueByMs: now() + 600_000 },
      ]);
      item = await note(i);
      const first = await stores.items.lease(ref(item.version), 60_000, now());
      await note(i);
      await stores.items.release(ref(first!.version), now() + 1_000, now() + 601_000);
      item = await note(i);
      const second = await stores.items.lease(ref(item.version), 60_000, now());
      const renewed = await stores.items.renew(ref(second!.version), 90_000, now());
      await note(i);
      const settled = await stores.items.settle(ref(renewed!.version), {
        state: 'succeeded',
        response: { candidates: [] },
        usage: { promptTokens: 5, outputTokens: 1 },
        costUsd: 0.000001,
        estimatedTokens: 5,
      });
      expect(settled).toBe(true);
      await note(i);
      await new Promise((r) => setTimeout(r, 5));
    }
    const grows = [...seen]
      .filter(([, values]) => values.length === n && values.every((v, i) => i === 0 || v > values[i - 1]!))
      .map(([field]) => field);
    const { composites, exempt, pinned } = await readItemIndexes();

    // Assert: the values deliveries stamp with the time are found (else this test checks nothing)
    expect(grows).toEqual(expect.arrayContaining(['lease.untilMs', 'dueByMs', 'plannedMs', 'finishedAt']));
    for (const field of grows) {
      expect(exempt, `${field} grows with time: its single-field index`).toContain(field);
      expect(pinned).not.toContain(field);
      for (const index of composites.filter((c) => c.fields.includes(field)))
        expect(index.fields[0], `${field} in index ${index.name}`).toBe('sweepShard');
    }
  });
});
