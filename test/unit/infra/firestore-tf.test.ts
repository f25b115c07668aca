import type { CollectionReference, Firestore } from '@google-cloud/firestore';
import { describe, expect, it } from 'vitest';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { readQuotas } from '../../../functions/platform/config.js';
import { createBulkWrites } from '../../../functions/platform/store/item-bulk-writes.js';
import { SWEEP_SHARDS } from '../../../functions/platform/store/item-codec.js';
import { readItemIndexes } from '../../helpers/firestore-indexes.js';

// The items' indexes (infra/terraform/firestore.tf) against what the items store writes: Firestore
// limits a collection whose documents carry a monotonically increasing indexed value to 500 writes a
// second (https://cloud.google.com/firestore/docs/solutions/shard-timestamp), and a job's items are
// written together in input order, so every field whose value follows that order is exempt from
// indexing, unless a query needs it.

/** The documents `createMany` writes for a job of `prompts`, captured from a stand-in BulkWriter. */
async function createdDocs(body: unknown): Promise<Array<Record<string, unknown>>> {
  const docs: Array<Record<string, unknown>> = [];
  const writer = {
    onWriteError: () => undefined,
    create: (_ref: unknown, data: Record<string, unknown>) => {
      docs.push(data);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
  const db = { bulkWriter: () => writer } as unknown as Firestore;
  const items = () => ({ doc: (id: string) => ({ id }) }) as unknown as CollectionReference;
  const job = normalizeJobRequest(body, readQuotas());
  await createBulkWrites(db, items, 86_400_000).createMany('job-1', job.items);
  return docs;
}

/** Top-level fields whose values strictly increase from each document to the next. */
function inInputOrder(docs: Array<Record<string, unknown>>): string[] {
  const fields = Object.keys(docs[0]!);
  return fields.filter((field) =>
    docs.every((doc, i) => {
      if (i === 0) return true;
      const [a, b] = [docs[i - 1]![field], doc[field]];
      return (typeof a === 'number' || typeof a === 'string') && typeof a === typeof b && a < (b as typeof a);
    }),
  );
}

describe('the items indexes (firestore.tf)', () => {
  it('exempt every field a job writes in input order', async () => {
    // Arrange: default keys (the index as a string) and keys a caller numbers its rows with.
    const bodies = [
      { prompts: ['first', 'second', 'third'] },
      { requests: ['a', 'b', 'c'].map((prompt, i) => ({ key: `row-000${i + 1}`, prompt })) },
    ];

    // Act
    const ordered = new Set((await Promise.all(bodies.map(createdDocs))).flatMap(inInputOrder));
    const { exempt } = await readItemIndexes();

    // Assert (requestJson may grow here too: it is exempt for its size)
    expect(ordered).toContain('index');
    expect(ordered).toContain('key');
    for (const field of ordered) expect(exempt, `${field} is written in input order`).toContain(field);
  });

  it("spread a job's items over every sweep shard, in turn", async () => {
    // Arrange: two shards' worth of items and more
    const docs = await createdDocs({
      prompts: Array.from({ length: SWEEP_SHARDS * 2 + 3 }, (_, i) => `p${i}`),
    });

    // Act
    const shards = docs.map((d) => d.sweepShard);

    // Assert: every shard gets a share, and neighbours never share one
    expect(new Set(shards).size).toBe(SWEEP_SHARDS);
    for (let i = 1; i < shards.length; i++)
      expect(shards[i], `items ${i - 1} and ${i}`).not.toBe(shards[i - 1]);
  });

  it('lead every composite index on a value that grows with time with the sweep shard', async () => {
    // Arrange: the values deliveries write as time goes on (test/integration/item-indexes.test.ts
    // finds them in what the store really writes; this checks firestore.tf on its own)
    const grows = ['lease.untilMs', 'dueByMs', 'plannedMs', 'finishedAt'];

    // Act
    const { composites, exempt, pinned } = await readItemIndexes();

    // Assert
    for (const field of grows) {
      expect(exempt, `${field}'s single-field index`).toContain(field);
      expect(pinned).not.toContain(field);
      for (const index of composites.filter((c) => c.fields.includes(field)))
        expect(index.fields[0], `index ${index.name}`).toBe('sweepShard');
    }
    expect(composites.map((c) => c.name).sort()).toEqual([
      'items_finished',
      'items_leases_expiring',
      'items_overdue',
    ]);
  });
});
