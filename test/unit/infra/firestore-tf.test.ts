import { resolve } from 'node:path';
import type { CollectionReference, Firestore } from '@google-cloud/firestore';
import { beforeAll, describe, expect, it } from 'vitest';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { readQuotas } from '../../../functions/platform/config.js';
import { createBulkWrites } from '../../../functions/platform/store/item-bulk-writes.js';
import { readTerraformModule, TerraformEvaluator } from '../../helpers/terraform.js';

// The items' indexes (infra/terraform/firestore.tf) against what the items store writes: Firestore
// limits a collection whose documents carry a monotonically increasing indexed value to 500 writes a
// second (https://cloud.google.com/firestore/docs/solutions/shard-timestamp), and a job's items are
// written together in input order, so every field whose value follows that order is exempt from
// indexing, unless a query needs it.

const TERRAFORM_DIR = resolve(import.meta.dirname, '..', '..', '..', 'infra', 'terraform');
let tf: TerraformEvaluator;

beforeAll(async () => {
  tf = new TerraformEvaluator(await readTerraformModule(TERRAFORM_DIR), {
    project_id: 'my-project-42',
    region: 'us-central1',
  });
});

/** The documents `createMany` writes for a job of `prompts`, captured from a stand-in batch. */
async function createdDocs(body: unknown): Promise<Array<Record<string, unknown>>> {
  const docs: Array<Record<string, unknown>> = [];
  const batch = () => ({
    create: (_ref: unknown, data: Record<string, unknown>) => docs.push(data),
    commit: () => Promise.resolve([]),
  });
  const db = { batch } as unknown as Firestore;
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

/** Fields of `items` whose single-field indexes firestore.tf turns off (an empty index_config). */
function exemptItemFields(): string[] {
  return tf
    .blocksOf('google_firestore_field')
    .flatMap((block) => tf.instances(block))
    .filter((instance) => tf.attribute(instance, 'collection') === 'items')
    .filter((instance) => {
      const config = instance.block.body.index_config as unknown;
      const blocks = Array.isArray(config) ? config : [config];
      return blocks.length > 0 && blocks.every((b) => b && Object.keys(b as object).length === 0);
    })
    .map((instance) => String(tf.attribute(instance, 'field')));
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
    const exempt = exemptItemFields();

    // Assert (requestJson may grow here too: it is exempt for its size)
    expect(ordered).toContain('index');
    expect(ordered).toContain('key');
    for (const field of ordered) expect(exempt, `${field} is written in input order`).toContain(field);
  });
});
