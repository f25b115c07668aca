import { resolve } from 'node:path';
import { readTerraformModule, TerraformEvaluator } from './terraform.js';

/**
 * The items' indexes as infra/terraform/firestore.tf declares them, for the tests that hold them
 * against what the items store writes (test/unit/infra/firestore-tf.test.ts,
 * test/integration/item-indexes.test.ts).
 */
export interface ItemIndexes {
  /** Fields of `items` whose single-field indexes are turned off (an empty index_config). */
  exempt: string[];
  /** Fields of `items` whose single-field indexes are declared (pinned). */
  pinned: string[];
  /** The composite indexes on `items`: each one's fields, in order. */
  composites: Array<{ name: string; fields: string[] }>;
}

const TERRAFORM_DIR = resolve(import.meta.dirname, '..', '..', 'infra', 'terraform');

export async function readItemIndexes(): Promise<ItemIndexes> {
  const tf = new TerraformEvaluator(await readTerraformModule(TERRAFORM_DIR), {
    project_id: 'my-project-42',
    region: 'us-central1',
  });
  const overrides = tf
    .blocksOf('google_firestore_field')
    .flatMap((block) => tf.instances(block))
    .filter((instance) => tf.attribute(instance, 'collection') === 'items')
    .map((instance) => {
      const config = instance.block.body.index_config as unknown;
      const blocks = Array.isArray(config) ? config : [config];
      const off = blocks.length > 0 && blocks.every((b) => b && Object.keys(b as object).length === 0);
      return { field: String(tf.attribute(instance, 'field')), off };
    });
  const composites = tf
    .blocksOf('google_firestore_index')
    .flatMap((block) => tf.instances(block))
    .filter((instance) => tf.attribute(instance, 'collection') === 'items')
    .map((instance) => {
      const fields = instance.block.body.fields as unknown;
      const list = (Array.isArray(fields) ? fields : [fields]) as Array<{ field_path: string }>;
      return { name: instance.block.name, fields: list.map((f) => f.field_path) };
    });
  return {
    exempt: overrides.filter((o) => o.off).map((o) => o.field),
    pinned: overrides.filter((o) => !o.off).map((o) => o.field),
    composites,
  };
}
