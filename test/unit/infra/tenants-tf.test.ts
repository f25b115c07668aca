import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaLocationsFor, ownerPrefix } from '../../../functions/core/owner-prefix.js';
import { loadConfig } from '../../../functions/platform/config.js';
import {
  hclTopLevelBlocks,
  readTerraformModule,
  TerraformEvaluator,
  type TerraformModule,
  terraformEvaluate,
} from '../../helpers/terraform.js';

// The bucket's IAM Conditions (infra/terraform/tenants.tf, iam.tf) against the code: the owner
// prefixes Terraform computes are the code's (evaluated with the real `terraform console`), the
// worker may read exactly the media locations the code's configuration (the environment functions.tf
// sets) allows and answers/, nothing of inbox/, staging/ or results/, and each bucket owner may
// create only in its own inbox/ and media folders and read only those and its results/. Each
// condition is evaluated as Cloud Storage does: on the object's name,
// projects/_/buckets/BUCKET/objects/OBJECT (https://cloud.google.com/storage/docs/access-control/iam#conditions).

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const TERRAFORM_DIR = join(ROOT, 'infra', 'terraform');
const BUCKET = 'my-project-42-fanout';
const OWNERS = ['Alice@example.com', 'bob@example.com', 'ci@my-project-42.iam.gserviceaccount.com'];
const VARS = {
  project_id: 'my-project-42',
  region: 'us-central1',
  bucket_name: BUCKET,
  bucket_owners: OWNERS,
};

/**
 * A condition as tenants.tf writes them, evaluated for one object name: a disjunction of
 * `resource.name.startsWith("…")`. Anything else throws, so a new form of condition needs a look here.
 */
function allows(expression: string, object: string): boolean {
  const name = `projects/_/buckets/${BUCKET}/objects/${object}`;
  return expression.split(' || ').some((term) => {
    const m = /^resource\.name\.startsWith\("([^"\\]+)"\)$/.exec(term.trim());
    if (!m) throw new Error(`a condition term this test cannot evaluate: ${term}`);
    return name.startsWith(m[1]!);
  });
}

interface Grant {
  role: string;
  member: string;
  expression: string;
}

let module: TerraformModule;
let tf: TerraformEvaluator;
let grants: Grant[];
const tempDirs: string[] = [];

afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

beforeAll(async () => {
  module = await readTerraformModule(TERRAFORM_DIR);
  tf = new TerraformEvaluator(module, VARS);
  grants = tf.blocksOf('google_storage_bucket_iam_member').flatMap((block) =>
    tf.instances(block).map((instance) => {
      const condition = tf.attribute(instance, 'condition') as Array<{ expression: string }> | undefined;
      return {
        role: String(tf.attribute(instance, 'role')),
        member: String(tf.attribute(instance, 'member')),
        expression: condition?.[0]?.expression ?? 'true',
      };
    }),
  );
});

/** What `member` may do with `object` under role `role` (an unconditional grant allows everything). */
const may = (member: string, role: string, object: string) =>
  grants
    .filter((g) => g.member === member && g.role === role)
    .some((g) => g.expression === 'true' || allows(g.expression, object));

const WORKER = `serviceAccount:fanout-worker@${VARS.project_id}.iam.gserviceaccount.com`;

describe('owner prefixes (tenants.tf)', () => {
  it("are the code's, computed by the real terraform console", async () => {
    const hcl = await readFile(join(TERRAFORM_DIR, 'tenants.tf'), 'utf8');
    const dir = await mkdtemp(join(tmpdir(), 'tenants-tf-'));
    tempDirs.push(dir);
    await writeFile(
      join(dir, 'main.tf'),
      `variable "bucket_name" {\n  default = "${BUCKET}"\n}\nvariable "bucket_owners" {\n  default = ${JSON.stringify(OWNERS)}\n}\nvariable "media_prefixes" {\n  default = ["media/"]\n}\nvariable "media_shared_prefixes" {\n  default = ["media/samples/"]\n}\n${hclTopLevelBlocks(hcl, 'locals').join('\n')}\n`,
    );

    const prefixes = await terraformEvaluate(dir, 'local.bucket_owner_prefixes');

    expect(prefixes).toEqual(
      Object.fromEntries(OWNERS.map((o) => [o.toLowerCase(), ownerPrefix(o.toLowerCase())])),
    );
  });
});

describe("the worker's grants on the bucket (iam.tf)", () => {
  it('reads exactly the media locations the configuration functions.tf sets allows, nothing of the internal prefixes', () => {
    const env = tf.local('common_env') as Record<string, string>;
    const config = loadConfig({ ...env, GEMINI_API_KEY: 'AIza-test-key' });
    const alice = ownerPrefix('alice@example.com');
    const locations = mediaLocationsFor(
      { roots: config.mediaGcsAllowed, shared: config.mediaGcsShared },
      undefined,
    );
    const objects = [
      `media/${alice}/cat.png`,
      'media/samples/red.png',
      'media.png',
      'mediax/cat.png',
      'inbox/a.jsonl',
      `inbox/${alice}/a.jsonl`,
      'staging/job.jsonl',
      'results/a.jsonl',
      `results/${alice}/a.jsonl`,
      'answers/job/item.json',
      'examples/images/red.png',
    ];

    for (const object of objects) {
      const byCode = locations.some((l) => `gs://${BUCKET}/${object}`.startsWith(l));
      expect(may(WORKER, 'roles/storage.objectViewer', object), object).toBe(byCode);
    }
    expect(locations.length).toBeGreaterThan(0);
  });

  it('reads and writes answers/ and nothing else with objectUser', () => {
    expect(may(WORKER, 'roles/storage.objectUser', 'answers/job/000000001.json')).toBe(true);
    for (const object of [
      'inbox/a.jsonl',
      'staging/x.jsonl',
      'results/a.jsonl',
      'media/x.png',
      'answersx/y',
    ]) {
      expect(may(WORKER, 'roles/storage.objectUser', object), object).toBe(false);
    }
    expect(grants.filter((g) => g.member === WORKER).every((g) => g.expression !== 'true')).toBe(true);
  });
});

describe("each bucket owner's grants (tenants.tf)", () => {
  const alice = ownerPrefix('alice@example.com');
  const bob = ownerPrefix('bob@example.com');
  const ALICE = 'user:alice@example.com';

  it('creates only in its own inbox/ and media folders', () => {
    const create = (object: string) => may(ALICE, 'roles/storage.objectCreator', object);

    expect(create(`inbox/${alice}/run.jsonl`)).toBe(true);
    expect(create(`media/${alice}/cat.png`)).toBe(true);
    for (const object of [
      `inbox/${bob}/run.jsonl`,
      'inbox/run.jsonl',
      `inbox/${alice}x/run.jsonl`,
      `results/${alice}/run.jsonl`,
      `media/${bob}/cat.png`,
      'media/samples/red.png',
      'staging/x.jsonl',
      'answers/x/y.json',
    ]) {
      expect(create(object), object).toBe(false);
    }
  });

  it('reads its own inbox/, media and results/ folders, nothing of another owner or the service', () => {
    const read = (object: string) => may(ALICE, 'roles/storage.objectViewer', object);

    for (const object of [
      `inbox/${alice}/a.jsonl`,
      `media/${alice}/a.png`,
      `results/${alice}/a.jsonl.summary.json`,
    ]) {
      expect(read(object), object).toBe(true);
    }
    for (const object of [
      `results/${bob}/a.jsonl`,
      `inbox/${bob}/a.jsonl`,
      `media/${bob}/a.png`,
      'results/a.jsonl',
      'staging/a.jsonl',
      'answers/job/1.json',
    ]) {
      expect(read(object), object).toBe(false);
    }
  });

  it('grants a service account as serviceAccount:, a person as user:, and no owner anything unconditional', () => {
    const members = new Set(
      grants.filter((g) => g.role.startsWith('roles/storage.object')).map((g) => g.member),
    );

    expect(members).toContain('serviceAccount:ci@my-project-42.iam.gserviceaccount.com');
    expect(members).toContain('user:bob@example.com');
    expect(grants.filter((g) => g.member.startsWith('user:')).every((g) => g.expression !== 'true')).toBe(
      true,
    );
  });
});

describe('expiry (firestore.tf, storage.tf)', () => {
  it('has a TTL policy on the expireAt the stores write, for jobs, items and response-cache entries', () => {
    const ttl = tf
      .blocksOf('google_firestore_field')
      .flatMap((block) => tf.instances(block))
      .filter((instance) => 'ttl_config' in instance.block.body)
      .map((instance) => `${tf.attribute(instance, 'collection')}.${tf.attribute(instance, 'field')}`);

    expect(ttl.sort()).toEqual(['items.expireAt', 'jobs.expireAt', 'responseCache.expireAt']);
  });

  it('deletes answers/ and results/ after the days the functions keep jobs for (RETENTION_DAYS)', () => {
    const vars = { ...VARS, retention_days: 45 };
    const evaluator = new TerraformEvaluator(module, vars);
    const env = evaluator.local('common_env') as Record<string, string>;
    const [bucketInstance] = evaluator.instances(
      evaluator.blocksOf('google_storage_bucket').find((b) => b.name === 'fanout')!,
    );
    const rules = evaluator.attribute(bucketInstance!, 'lifecycle_rule') as Array<{
      condition: Array<{ age: number; matches_prefix: string[] }>;
      action: Array<{ type: string }>;
    }>;
    const ageOf = (prefix: string) =>
      rules.find((r) => r.action[0]?.type === 'Delete' && r.condition[0]?.matches_prefix.includes(prefix))
        ?.condition[0]?.age;

    expect(loadConfig({ ...env, GEMINI_API_KEY: 'AIza-test-key' }).retentionMs).toBe(45 * 86_400_000);
    expect(ageOf('answers/')).toBe(45);
    expect(ageOf('results/')).toBe(45);
    expect(ageOf('staging/')).toBe(3);
  });
});
