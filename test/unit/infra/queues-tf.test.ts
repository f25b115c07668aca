import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueConcurrency } from '../../../functions/core/queue-concurrency.js';
import { queueRateLimits } from '../../../functions/core/queue-rate.js';
import { parseQuotas, type Quotas } from '../../../functions/core/quotas.js';
import { createTaskQueue } from '../../../functions/platform/task-queue.js';
import { hclAttributeLine, hclTopLevelBlocks, terraformEvaluate } from '../../helpers/terraform.js';

// Terraform sizes the queues in the cloud (infra/terraform/queues.tf); the code sizes them on the local
// cloud (ensureQueues) and plans dispatches with the same figures (functions/core/rate.ts). These
// tests evaluate queues.tf's own expressions with the real `terraform console`, so editing either side
// alone makes them fail.

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const TERRAFORM_DIR = join(ROOT, 'infra', 'terraform');

/** A queue as queues.tf declares it (`local.queues`: the models' and the control queue). */
interface DeclaredQueue {
  id: string;
  max_dispatches_per_second: number;
  max_concurrent_dispatches: number;
}

/** What queues.tf plans, read from its locals. */
interface TerraformQueues {
  headroom: number;
  queues: Record<string, DeclaredQueue>;
  limits: Record<string, { burst: number; max_dispatches_per_second: number }>;
  retry: { max_attempts: number; min_backoff: string; max_backoff: string; max_doublings: number };
}

interface Duration {
  seconds?: number | string;
  nanos?: number;
}

/** A queue as ensureQueues sends it to Cloud Tasks. */
interface SentQueue {
  name: string;
  rateLimits: { maxDispatchesPerSecond: number; maxConcurrentDispatches: number; maxBurstSize?: number };
  retryConfig: { maxAttempts: number; minBackoff: Duration; maxBackoff: Duration; maxDoublings: number };
}

/**
 * A module holding only the locals that size the queues, copied from the Terraform files as they are
 * now: `quotas` from main.tf and every locals block of queues.tf. It goes in `<dir>/terraform` next to
 * `<dir>/quotas.json`, where main.tf's `${path.module}/../quotas.json` finds it, so any quotas
 * document can stand in for infra/quotas.json without touching an expression.
 */
async function queueLocalsModule(vars: WorkerVars): Promise<string> {
  const main = await readFile(join(TERRAFORM_DIR, 'main.tf'), 'utf8');
  const queues = await readFile(join(TERRAFORM_DIR, 'queues.tf'), 'utf8');
  const quotas = hclAttributeLine(hclTopLevelBlocks(main, 'locals').join('\n'), 'quotas');
  const blocks = hclTopLevelBlocks(queues, 'locals');
  if (blocks.length === 0) throw new Error('infra/terraform/queues.tf has no top-level locals block');
  // The variables queues.tf reads (variables.tf declares them), at this run's values.
  const variables = Object.entries(vars).map(([name, value]) => `variable "${name}" { default = ${value} }`);
  return [...variables, 'locals {', quotas, '}', ...blocks, ''].join('\n');
}

/** The variables queues.tf sizes the queues by: items a task, and what the worker serves at once. */
interface WorkerVars {
  items_per_task: number;
  worker_max_instances: number;
  worker_concurrency: number;
}

/** variables.tf's defaults, and a deployment with several items a task and a small worker. */
const DEFAULT_VARS: WorkerVars = { items_per_task: 1, worker_max_instances: 100, worker_concurrency: 80 };
const SMALL_MULTI_VARS: WorkerVars = { items_per_task: 4, worker_max_instances: 3, worker_concurrency: 40 };

const tempDirs: string[] = [];

async function evaluateQueuesTf(module: string, quotasJson: string): Promise<TerraformQueues> {
  const dir = await mkdtemp(join(tmpdir(), 'queues-tf-'));
  tempDirs.push(dir);
  await mkdir(join(dir, 'terraform'));
  await writeFile(join(dir, 'quotas.json'), quotasJson);
  await writeFile(join(dir, 'terraform', 'queues.tf'), module);
  return (await terraformEvaluate(
    join(dir, 'terraform'),
    '{ headroom = local.quotas.headroom, queues = local.queues, limits = local.model_queue_limits, retry = local.queue_retry }',
  )) as TerraformQueues;
}

/** The queues ensureQueues creates from `quotas`, by queue id, captured by a stand-in client. */
async function queuesSentByCode(quotas: Quotas, workerSlots: number): Promise<Map<string, SentQueue>> {
  const sent: SentQueue[] = [];
  const client = {
    locationPath: (project: string, location: string) => `projects/${project}/locations/${location}`,
    queuePath: (project: string, location: string, queue: string) =>
      `projects/${project}/locations/${location}/queues/${queue}`,
    createQueue: async (request: { queue: SentQueue }) => {
      sent.push(request.queue);
      return [request.queue];
    },
  };
  const taskQueue = createTaskQueue(
    { projectId: 'fanout-unit', region: 'us-central1', workerUrl: 'https://worker.invalid' },
    client as unknown as NonNullable<Parameters<typeof createTaskQueue>[1]>,
  );
  await taskQueue.ensureQueues(quotas, { workerSlots });
  return new Map(sent.map((q) => [q.name.slice(q.name.lastIndexOf('/') + 1), q]));
}

/** Seconds of a Cloud Tasks duration string ("0.2s", as Terraform writes it). */
function durationStringSeconds(value: string): number {
  const match = /^(\d+(?:\.\d+)?)s$/.exec(value);
  if (!match) throw new Error(`not a duration in seconds: ${value}`);
  return Number(match[1]);
}

/** Seconds of a protobuf Duration. */
function durationSeconds(value: Duration): number {
  return Number(value.seconds ?? 0) + (value.nanos ?? 0) / 1e9;
}

/**
 * Terraform floors an exact quotient to 3 decimals; the code floors a double. Where the exact rate
 * n / 60 (n = budget − burst, a whole number) falls on a thousandth, the double n / 60 × 1000 can sit
 * just below it and the code lands 0.001 lower (queues.tf says so; 1007 rpm at headroom 0.98 is one).
 * So the rates are equal, or it is exactly that case: the code's is 0.001 lower (never higher),
 * Terraform's is n / 60 for a whole n, and the code's last step on the double n / 60 gives the code's.
 * A Terraform rate that is merely 0.001 off is not let through.
 */
function expectSameRate(code: number, terraform: number, what: string): void {
  if (code === terraform) return;
  const n = Math.round(terraform * 60);
  const doubleRounding =
    Math.round((terraform - code) * 1000) === 1 &&
    Math.abs(terraform * 60 - n) < 1e-9 &&
    Math.floor((n / 60) * 1000) / 1000 === code;
  expect(doubleRounding, `${what}: code ${code}/s, Terraform ${terraform}/s`).toBe(true);
}

/**
 * Synthetic rpm values: the smallest quotas, both sides of the burst's minute boundaries, the real
 * tiers, the 500/s ceiling, and 986 (headroom 1) and 1007 (headroom 0.98), where the code's double
 * arithmetic lands 0.001 below Terraform's exact one.
 */
const SWEEP_RPM = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 59, 60, 61, 119, 120, 986, 1000, 1007, 30_000, 100_000];

function sweepQuotas(headroom: number): string {
  const models = Object.fromEntries(
    SWEEP_RPM.map((rpm) => [
      `rpm-${rpm}`,
      { rpm, tpm: 1_000_000, rpd: null, batch: true, price: { inputPerMillion: 0.3, outputPerMillion: 2.5 } },
    ]),
  );
  return JSON.stringify({
    tier: 'sweep',
    defaultModel: 'rpm-1',
    batchDiscount: 0.5,
    batchMinItems: 1000,
    headroom,
    queue: { maxAttempts: 7, minBackoffSeconds: 0.25, maxBackoffSeconds: 42, maxDoublings: 2 },
    models,
  });
}

const readRepoFile = (path: string) => readFile(join(ROOT, path), 'utf8');

/** The bundled quotas with two models' rpm "auto": one with a ceiling (maxRpm), one without. */
async function autoRpmQuotas(): Promise<string> {
  const doc = JSON.parse(await readRepoFile('infra/quotas.json')) as {
    models: Record<string, Record<string, unknown>>;
  };
  const [first, second] = Object.keys(doc.models);
  Object.assign(doc.models[first!]!, { rpm: 'auto', maxRpm: 2400 });
  Object.assign(doc.models[second!]!, { rpm: 'auto' });
  return JSON.stringify(doc);
}

const SOURCES: Array<{ name: string; json: () => Promise<string>; vars: WorkerVars }> = [
  { name: 'infra/quotas.json', json: () => readRepoFile('infra/quotas.json'), vars: DEFAULT_VARS },
  {
    name: 'infra/quotas.json, 4 items a task, 3 × 40 worker slots',
    json: () => readRepoFile('infra/quotas.json'),
    vars: SMALL_MULTI_VARS,
  },
  {
    name: 'test/fixtures/quotas.e2e.json',
    json: () => readRepoFile('test/fixtures/quotas.e2e.json'),
    vars: DEFAULT_VARS,
  },
  {
    name: 'test/fixtures/quotas.bench.json',
    json: () => readRepoFile('test/fixtures/quotas.bench.json'),
    vars: DEFAULT_VARS,
  },
  {
    name: 'test/fixtures/quotas.vertex.json',
    json: () => readRepoFile('test/fixtures/quotas.vertex.json'),
    vars: DEFAULT_VARS,
  },
  { name: 'rpm "auto" with and without maxRpm', json: async () => autoRpmQuotas(), vars: DEFAULT_VARS },
  { name: 'rpm sweep at headroom 0.98', json: async () => sweepQuotas(0.98), vars: DEFAULT_VARS },
  { name: 'rpm sweep at headroom 1', json: async () => sweepQuotas(1), vars: DEFAULT_VARS },
  {
    name: 'rpm sweep at headroom 0.98, 4 items a task, 3 × 40 worker slots',
    json: async () => sweepQuotas(0.98),
    vars: SMALL_MULTI_VARS,
  },
  {
    name: 'rpm sweep at headroom 1, 7 items a task, 2 × 80 worker slots',
    json: async () => sweepQuotas(1),
    vars: { items_per_task: 7, worker_max_instances: 2, worker_concurrency: 80 },
  },
];

/** One quotas document as the code reads it, as Terraform sizes it, and as ensureQueues sends it. */
interface Evaluated {
  vars: WorkerVars;
  quotas: Quotas;
  terraform: TerraformQueues;
  code: Map<string, SentQueue>;
}

const evaluated = new Map<string, Evaluated>();

beforeAll(async () => {
  // One `terraform console` per quotas document, all at once.
  await Promise.all(
    SOURCES.map(async ({ name, json, vars }) => {
      const module = await queueLocalsModule(vars);
      const text = await json();
      // The functions read ITEMS_PER_TASK as Terraform sets it (config.ts puts it in the quotas).
      const quotas = { ...parseQuotas(JSON.parse(text), name), itemsPerTask: vars.items_per_task };
      const slots = vars.worker_max_instances * vars.worker_concurrency;
      const [terraform, code] = await Promise.all([
        evaluateQueuesTf(module, text),
        queuesSentByCode(quotas, slots),
      ]);
      evaluated.set(name, { vars, quotas, terraform, code });
    }),
  );
});

afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe.each(SOURCES.map((s) => s.name))('queues.tf with %s', (name) => {
  const get = () => {
    const result = evaluated.get(name);
    if (!result) throw new Error(`${name} was not evaluated`);
    return result;
  };

  it("gives every model the dispatch rate and burst of functions/core/rate.ts's queueRateLimits", () => {
    const { quotas, terraform } = get();

    expect(terraform.headroom).toBe(quotas.headroom);
    expect(Object.keys(terraform.limits).sort()).toEqual(Object.keys(quotas.models).sort());
    const { vars } = get();
    const concurrency = queueConcurrency(quotas, vars.worker_max_instances * vars.worker_concurrency);
    for (const [model, quota] of Object.entries(quotas.models)) {
      const code = queueRateLimits(quota, quotas.headroom, vars.items_per_task);
      const queue = terraform.queues[model];
      const what = `${model} (${quota.rpm} rpm × ${quotas.headroom})`;

      expect(queue, what).toBeDefined();
      expect(terraform.limits[model]?.burst, what).toBe(code.maxBurstSize);
      expectSameRate(code.maxDispatchesPerSecond, queue!.max_dispatches_per_second, what);
      expect(queue!.max_concurrent_dispatches, what).toBe(concurrency.models[model]);
    }
    expect(terraform.queues.control?.max_concurrent_dispatches).toBe(concurrency.control);
  });

  it("never dispatches more at once, over every queue, than the worker's max instances × concurrency", () => {
    const { vars, terraform } = get();
    const inFlight = Object.values(terraform.queues).reduce((sum, q) => sum + q.max_concurrent_dispatches, 0);

    expect(inFlight).toBeLessThanOrEqual(vars.worker_max_instances * vars.worker_concurrency);
    for (const q of Object.values(terraform.queues))
      expect(q.max_concurrent_dispatches, q.id).toBeGreaterThan(0);
  });

  it('declares the queues ensureQueues creates, with the same ids, rate limits and retry policy', () => {
    const { quotas, terraform, code } = get();
    const declared = Object.values(terraform.queues);

    expect(declared.map((q) => q.id).sort()).toEqual([...code.keys()].sort());
    for (const queue of declared) {
      const sent = code.get(queue.id)!;

      expectSameRate(sent.rateLimits.maxDispatchesPerSecond, queue.max_dispatches_per_second, queue.id);
      expect(queue.max_concurrent_dispatches, queue.id).toBe(sent.rateLimits.maxConcurrentDispatches);
      expect(terraform.retry.max_attempts, queue.id).toBe(sent.retryConfig.maxAttempts);
      expect(terraform.retry.max_doublings, queue.id).toBe(sent.retryConfig.maxDoublings);
      expect(durationStringSeconds(terraform.retry.min_backoff), queue.id).toBeCloseTo(
        durationSeconds(sent.retryConfig.minBackoff),
        9,
      );
      expect(durationStringSeconds(terraform.retry.max_backoff), queue.id).toBeCloseTo(
        durationSeconds(sent.retryConfig.maxBackoff),
        9,
      );
    }
    // Both follow the quotas document's retry policy, which the worker also reads (last attempt).
    expect(terraform.retry.max_attempts).toBe(quotas.queue.maxAttempts);
    expect(durationStringSeconds(terraform.retry.min_backoff)).toBeCloseTo(quotas.queue.minBackoffSeconds, 9);
    expect(durationStringSeconds(terraform.retry.max_backoff)).toBeCloseTo(quotas.queue.maxBackoffSeconds, 9);
    expect(terraform.retry.max_doublings).toBe(quotas.queue.maxDoublings);
  });
});
