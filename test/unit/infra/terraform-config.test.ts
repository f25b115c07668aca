import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CONTROL_QUEUE_ID, queueIdForModel } from '../../../functions/core/quotas.js';
import { loadConfig, requireGeminiKey } from '../../../functions/platform/config.js';
import {
  type HclBody,
  type Instance,
  parseHcl,
  readTerraformModule,
  TerraformEvaluator,
  type TerraformModule,
  Unknown,
} from '../../helpers/terraform.js';
import { TERRAFORM_VERSION } from '../../helpers/tools.js';

// infra/terraform (every .tf file, read with the HCL parser Terraform itself uses) and cloudbuild.yaml
// checked against the code: the functions functions/index.ts registers, the environment loadConfig
// accepts, the queues of infra/quotas.json, the rules of the house (one service account per function,
// no public invoker, tests before deploy). Terraform's expressions are evaluated with the values of
// terraform.tfvars.example and the variables' defaults; what only exists after apply (a function's URL)
// is traced to the resource it comes from. Each check lists every finding with its file and resource.
// The queues' rates are checked by queues-tf.test.ts with the real `terraform console`.

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const TERRAFORM = 'infra/terraform';

/**
 * Variables Terraform sets that our config schema rightly does not read: the platform reads them.
 * Anything else Terraform sets and loadConfig ignores is a finding (a misspelt or forgotten name).
 */
const PLATFORM_VARIABLES: Record<string, string> = {
  NODE_ENV:
    'read by the Functions Framework (Express): "production" keeps stack traces out of its error pages',
};

/** The functions that call Gemini (functions/index.ts checks the key for these): the only ones given it. */
const GEMINI_CALLERS = ['worker', 'tick'];

const EVENT_FUNCTION_MAX_TIMEOUT_SECONDS = 540;
const STORAGE_FINALIZED = 'google.cloud.storage.object.v1.finalized';
const PUBLIC_MEMBERS = ['allUsers', 'allAuthenticatedUsers'];

/** A deployed function: one instance of a google_cloudfunctions2_function block. */
interface DeployedFunction {
  instance: Instance;
  /** `infra/terraform/functions.tf google_cloudfunctions2_function.function["worker"]`. */
  where: string;
  entryPoint: unknown;
  service: Record<string, unknown>;
}

/** One IAM grant: an instance of a `*_iam_member` (one member) or `*_iam_binding` (several) block. */
interface Grant {
  instance: Instance;
  where: string;
  role: unknown;
  members: unknown[];
}

interface CloudBuildStep {
  id?: string;
  name?: string;
  entrypoint?: string;
  args?: string[];
  script?: string;
  waitFor?: string[];
}

let module: TerraformModule;
let tfvars: Record<string, unknown>;
let tf: TerraformEvaluator;
let registered: Map<string, 'http' | 'cloudEvent'>;
let functions: DeployedFunction[];
let steps: CloudBuildStep[];

const readRepoFile = (path: string) => readFile(join(ROOT, path), 'utf8');

/** The functions functions/index.ts registers (`http('name', …)`, `cloudEvent('name', …)`), read from its text. */
function registeredFunctions(source: string): Map<string, 'http' | 'cloudEvent'> {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const names = new Map<string, 'http' | 'cloudEvent'>();
  for (const m of code.matchAll(/\b(http|cloudEvent)\s*(?:<[^>()]*>)?\s*\(\s*(['"`])([^'"`]+)\2/g)) {
    names.set(m[3]!, m[1] as 'http' | 'cloudEvent');
  }
  return names;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The first body of a nested block (`service_config { … }` reads as a list of one). */
const firstBlock = (value: unknown): Record<string, unknown> | undefined =>
  Array.isArray(value) && isRecord(value[0]) ? value[0] : undefined;

/** The source text of an attribute that is one expression (hcl2json writes it as `${…}`). */
const expressionText = (raw: unknown): string => String(raw ?? '').replace(/^\$\{([\s\S]*)\}$/, '$1');

const show = (value: unknown): string =>
  value instanceof Unknown ? `(known after apply: ${value.what})` : JSON.stringify(value);

const where = (instance: Instance) => `${TERRAFORM}/${instance.where}`;

function deployedFunctions(evaluator: TerraformEvaluator): DeployedFunction[] {
  return evaluator.blocksOf('google_cloudfunctions2_function').flatMap((block) =>
    evaluator.instances(block).map((instance) => ({
      instance,
      where: where(instance),
      entryPoint: firstBlock(evaluator.attribute(instance, 'build_config'))?.entry_point,
      service: firstBlock(evaluator.attribute(instance, 'service_config')) ?? {},
    })),
  );
}

const deployed = (name: string) => functions.find((f) => f.entryPoint === name);

/** A function's event triggers: `event_trigger` blocks, static or `dynamic`, evaluated. */
function eventTriggers(evaluator: TerraformEvaluator, fn: Instance): Record<string, unknown>[] {
  const body = fn.block.body;
  const triggers: Record<string, unknown>[] = [];
  if ('event_trigger' in body)
    triggers.push(...(evaluator.attribute(fn, 'event_trigger') as Record<string, unknown>[]));
  triggers.push(...dynamicBlocks(evaluator, fn, body, 'event_trigger'));
  return triggers;
}

/** The `dynamic "<name>"` blocks of `body` (a block of `fn` or nested in it), each expanded and evaluated. */
function dynamicBlocks(
  evaluator: TerraformEvaluator,
  fn: Instance,
  body: HclBody,
  name: string,
): Record<string, unknown>[] {
  const expanded: Record<string, unknown>[] = [];
  const dynamic = (body.dynamic as Record<string, HclBody[]> | undefined)?.[name] ?? [];
  for (const block of dynamic) {
    const iterator = block.iterator === undefined ? name : expressionText(block.iterator);
    const each = evaluator.value(block.for_each, fn.scope);
    const entries = Array.isArray(each)
      ? each.map((v, i) => [i, v] as const)
      : Object.entries(each as object);
    for (const [key, value] of entries) {
      const content = (block.content as HclBody[])[0];
      expanded.push(
        evaluator.value(content, { ...fn.scope, [iterator]: { key, value } }) as Record<string, unknown>,
      );
    }
  }
  return expanded;
}

function grantsOf(evaluator: TerraformEvaluator): Grant[] {
  return evaluator.module.blocks
    .filter((b) => b.kind === 'resource' && /_iam_(member|binding)$/.test(b.type))
    .flatMap((block) =>
      evaluator.instances(block).map((instance) => ({
        instance,
        where: where(instance),
        role: evaluator.attribute(instance, 'role'),
        members: block.type.endsWith('_member')
          ? [evaluator.attribute(instance, 'member')]
          : (evaluator.attribute(instance, 'members') as unknown[]),
      })),
    );
}

/** The function an invoker grant is on, traced through the service/function attribute it names. */
function grantedFunction(evaluator: TerraformEvaluator, grant: Grant): Instance | undefined {
  for (const attribute of ['service', 'cloud_function', 'name']) {
    if (!(attribute in grant.instance.block.body)) continue;
    const target = evaluator.attribute(grant.instance, attribute);
    if (target instanceof Unknown && target.origin?.block.type === 'google_cloudfunctions2_function') {
      return target.origin;
    }
  }
  return undefined;
}

/** The environment a function gets in the cloud: plain variables, and secrets as stand-in values. */
function cloudEnvironment(fn: DeployedFunction) {
  const plain = (fn.service.environment_variables ?? {}) as Record<string, unknown>;
  const serviceBody = (fn.instance.block.body.service_config as HclBody[] | undefined)?.[0] ?? {};
  const secrets = [
    ...((fn.service.secret_environment_variables ?? []) as Array<{ key: unknown }>),
    ...dynamicBlocks(tf, fn.instance, serviceBody, 'secret_environment_variables'),
  ].map((s) => String(s.key));
  const problems: string[] = [];
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(plain)) {
    if (typeof value === 'string') env[name] = value;
    else
      problems.push(`${fn.where}: ${name} is ${show(value)}, not a string the function can read at start-up`);
  }
  for (const name of secrets) env[name] = `secret-manager-value-of-${name}`;
  return { plain, secrets, env, problems };
}

/** What loadConfig makes of an environment: the configuration, or its error, as comparable text. */
function configOutcome(env: Record<string, string>): string {
  try {
    return JSON.stringify(loadConfig(env));
  } catch (error) {
    return `error: ${(error as Error).message}`;
  }
}

/**
 * Whether loadConfig reads `name`: some value of it, or its absence, changes what loadConfig returns
 * or how it fails. A variable the schema does not declare is stripped and changes nothing.
 */
function configReads(env: Record<string, string>, name: string): boolean {
  const without = { ...env };
  delete without[name];
  const absent = configOutcome(without);
  return [env[name] ?? '', '', 'probe', '0', '1', '99999999', 'https://probe.invalid'].some(
    (value) => configOutcome({ ...without, [name]: value }) !== absent,
  );
}

/** Every string of a raw (unevaluated) HCL value, for text scans. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (isRecord(value)) return Object.values(value).flatMap(strings);
  return [];
}

const memoryMiB = (value: unknown): number => {
  const m = /^(\d+(?:\.\d+)?)(Mi|Gi|M|G)$/.exec(String(value));
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'Gi'
    ? n * 1024
    : m[2] === 'G'
      ? (n * 1e9) / 2 ** 20
      : m[2] === 'M'
        ? (n * 1e6) / 2 ** 20
        : n;
};

const stepLabel = (step: CloudBuildStep, index: number) =>
  `cloudbuild.yaml step ${step.id ?? `#${index + 1}`}`;

const stepText = (step: CloudBuildStep) =>
  [step.name, step.entrypoint, ...(step.args ?? []), step.script].filter(Boolean).join(' ');

/** Steps that deploy: terraform apply (or a gcloud deploy). */
const isDeployStep = (step: CloudBuildStep) =>
  /terraform\b[\s\S]*\bapply\b|gcloud\s+(functions|run)\s+deploy/.test(stepText(step)) ||
  (/terraform/i.test(`${step.name} ${step.entrypoint}`) && (step.args ?? []).includes('apply'));

/** Steps that run the test suite. */
const isTestStep = (step: CloudBuildStep) => /\bnpm\s+(run\s+)?test\b|\bvitest\b/.test(stepText(step));

/** The steps a step waits for, directly or not. Without waitFor a step waits for every step before it. */
function stepDependencies(all: CloudBuildStep[], index: number, seen = new Set<number>()): Set<number> {
  const step = all[index]!;
  const direct =
    step.waitFor === undefined
      ? all.slice(0, index).map((_, i) => i)
      : step.waitFor.filter((id) => id !== '-').map((id) => all.findIndex((s) => s.id === id));
  for (const i of direct) {
    if (i < 0 || seen.has(i)) continue;
    seen.add(i);
    stepDependencies(all, i, seen);
  }
  return seen;
}

beforeAll(async () => {
  module = await readTerraformModule(join(ROOT, TERRAFORM));
  tfvars = await parseHcl(
    'terraform.tfvars.example',
    await readRepoFile(`${TERRAFORM}/terraform.tfvars.example`),
  );
  tf = new TerraformEvaluator(module, tfvars);
  registered = registeredFunctions(await readRepoFile('functions/index.ts'));
  functions = deployedFunctions(tf);
  steps = (
    (parseYaml(await readRepoFile('cloudbuild.yaml')) as { steps?: CloudBuildStep[] }).steps ?? []
  ).map((s) => ({ ...s, id: s.id === undefined ? undefined : String(s.id) }));
});

describe('the functions Terraform deploys', () => {
  it('include every function functions/index.ts registers, named and entered by that name, of its kind', () => {
    const findings: string[] = [];

    expect(
      registered.size,
      'functions/index.ts: no http(…) or cloudEvent(…) registration found',
    ).toBeGreaterThan(0);
    for (const [name, kind] of registered) {
      const matches = functions.filter((f) => f.entryPoint === name);
      if (matches.length === 0) {
        findings.push(
          `functions/index.ts registers ${kind}('${name}', …), but no google_cloudfunctions2_function in ${TERRAFORM} has entry point "${name}"`,
        );
      }
      if (matches.length > 1)
        findings.push(`"${name}" is deployed ${matches.length} times: ${matches.map((f) => f.where)}`);
      for (const fn of matches) {
        const functionName = tf.attribute(fn.instance, 'name');
        if (functionName !== name)
          findings.push(`${fn.where}: named ${show(functionName)}, not its entry point "${name}"`);
        const triggers = eventTriggers(tf, fn.instance).length;
        if (kind === 'cloudEvent' && triggers !== 1) {
          findings.push(
            `${fn.where}: "${name}" is registered with cloudEvent() but has ${triggers} event triggers, not 1`,
          );
        }
        if (kind === 'http' && triggers !== 0) {
          findings.push(`${fn.where}: "${name}" is registered with http() but has an event trigger`);
        }
      }
    }

    expect(findings).toEqual([]);
  });

  it('are only functions functions/index.ts registers, and local.functions lists exactly those', () => {
    const findings: string[] = [];
    const notRegistered = (name: string) =>
      `functions/index.ts registers no http('${name}', …) or cloudEvent('${name}', …)`;

    for (const fn of functions) {
      if (typeof fn.entryPoint !== 'string' || !registered.has(fn.entryPoint)) {
        findings.push(
          `${fn.where}: deploys entry point ${show(fn.entryPoint)}, but ${notRegistered(String(fn.entryPoint))}`,
        );
      }
    }
    const declared = module.locals.get('functions');
    if (declared) {
      const names = Object.keys(tf.local('functions') as object);
      for (const name of names.filter((n) => !registered.has(n))) {
        findings.push(
          `${TERRAFORM}/${declared.file} local.functions.${name}: deployed, but ${notRegistered(name)}`,
        );
      }
      for (const name of [...registered.keys()].filter((n) => !names.includes(n))) {
        findings.push(
          `${TERRAFORM}/${declared.file} local.functions: has no entry "${name}", which functions/index.ts registers`,
        );
      }
    }

    expect(findings).toEqual([]);
  });

  it('each run as a service account of their own, used by no other function and no caller', () => {
    const findings: string[] = [];
    const accounts = tf
      .blocksOf('google_service_account')
      .flatMap((block) => tf.instances(block).map((instance) => tf.attribute(instance, 'email')));
    // Identities that call functions: no function may run as one of them.
    const callers = new Map<unknown, string>();
    for (const fn of functions) {
      callers.set(
        cloudEnvironment(fn).env.TASKS_SERVICE_ACCOUNT,
        'the Cloud Tasks OIDC identity (TASKS_SERVICE_ACCOUNT)',
      );
      for (const trigger of eventTriggers(tf, fn.instance)) {
        callers.set(trigger.service_account_email, `the event trigger identity of ${fn.where}`);
      }
    }
    for (const block of tf.blocksOf('google_cloud_scheduler_job')) {
      for (const job of tf.instances(block)) {
        const oidc = firstBlock(firstBlock(tf.attribute(job, 'http_target'))?.oidc_token);
        callers.set(oidc?.service_account_email, `the OIDC identity of ${where(job)}`);
      }
    }

    const runtimeOf = new Map<unknown, string>();
    for (const fn of functions) {
      const email = fn.service.service_account_email;
      if (typeof email !== 'string') {
        findings.push(
          `${fn.where}: service_config.service_account_email is ${show(email)}: give it its own google_service_account (the default compute account is shared by everything in the project)`,
        );
        continue;
      }
      if (!accounts.includes(email))
        findings.push(`${fn.where}: runs as ${email}, not a google_service_account of ${TERRAFORM}`);
      const other = runtimeOf.get(email);
      if (other) findings.push(`${fn.where}: shares its service account ${email} with ${other}`);
      runtimeOf.set(email, fn.where);
      const caller = callers.get(email);
      if (caller) findings.push(`${fn.where}: runs as ${email}, which is also ${caller}`);
    }

    expect(findings).toEqual([]);
  });
});

describe("the functions' environment", () => {
  it('is one loadConfig accepts as the cloud (no emulator, the real Gemini API), with GEMINI_API_KEY from Secret Manager where Gemini is called', () => {
    const findings: string[] = [];

    for (const fn of functions) {
      const { plain, secrets, env, problems } = cloudEnvironment(fn);
      const callsGemini = GEMINI_CALLERS.includes(String(fn.entryPoint));
      findings.push(...problems);
      if ('GEMINI_API_KEY' in plain) {
        findings.push(
          `${fn.where}: GEMINI_API_KEY is a plain environment variable; read it from Secret Manager (secret_environment_variables)`,
        );
      }
      if (callsGemini && !secrets.includes('GEMINI_API_KEY'))
        findings.push(`${fn.where}: GEMINI_API_KEY is not read from Secret Manager`);
      if (!callsGemini && secrets.includes('GEMINI_API_KEY'))
        findings.push(`${fn.where}: binds GEMINI_API_KEY, but ${String(fn.entryPoint)} never calls Gemini`);
      try {
        const config = loadConfig(env);
        if (config.local)
          findings.push(`${fn.where}: sets an emulator host, so loadConfig takes it for the local cloud`);
        if (config.gemini.local || config.gemini.baseUrl) {
          findings.push(
            `${fn.where}: points Gemini at ${config.gemini.baseUrl ?? 'the local stand-in'}, not the Gemini API`,
          );
        }
        if (callsGemini) requireGeminiKey(config);
      } catch (error) {
        findings.push(
          `${fn.where}: loadConfig (functions/platform/config.ts) refuses the environment Terraform sets: ${(error as Error).message.replace(/\s*\n\s*/g, ' ')}`,
        );
      }
    }

    expect(findings).toEqual([]);
  });

  it('gives each secret only to the functions that bind it: the Gemini key to worker and tick, the callback secret to its senders', () => {
    const findings: string[] = [];
    const grants = grantsOf(tf).filter(
      (g) => g.instance.block.type === 'google_secret_manager_secret_iam_member',
    );
    const secretIds = new Map<unknown, string>([
      [
        tf.attribute(
          tf.instances(
            tf.blocksOf('google_secret_manager_secret').find((b) => b.name === 'gemini_api_key')!,
          )[0]!,
          'secret_id',
        ),
        'GEMINI_API_KEY',
      ],
      [
        tf.attribute(
          tf.instances(
            tf.blocksOf('google_secret_manager_secret').find((b) => b.name === 'callback_secret')!,
          )[0]!,
          'secret_id',
        ),
        'CALLBACK_SECRET',
      ],
    ]);

    for (const fn of functions) {
      const member = `serviceAccount:${fn.service.service_account_email}`;
      const bound = cloudEnvironment(fn).secrets;
      const readable = grants
        .filter((g) => g.role === 'roles/secretmanager.secretAccessor' && g.members.includes(member))
        .map((g) => secretIds.get(tf.attribute(g.instance, 'secret_id')) ?? 'another secret');
      for (const name of bound.filter((n) => !readable.includes(n)))
        findings.push(`${fn.where}: binds ${name} but may not read its secret`);
      for (const name of readable.filter((n) => !bound.includes(n)))
        findings.push(`${fn.where}: may read the secret of ${name}, which it does not bind`);
    }
    expect(deployed('ingest') && cloudEnvironment(deployed('ingest')!).secrets).not.toContain(
      'GEMINI_API_KEY',
    );

    expect(findings).toEqual([]);
  });

  it('binds the Gemini webhook secret to tick alone, which alone may read it, once batch_webhooks is on', () => {
    // Arrange: off by default (the secret needs a version before a deploy binds it), then on.
    const on = new TerraformEvaluator(module, { ...tfvars, batch_webhooks: true });
    const secretBlock = tf
      .blocksOf('google_secret_manager_secret')
      .find((b) => b.name === 'gemini_webhook_secret');
    expect(secretBlock, `${TERRAFORM}/secrets.tf: no secret "gemini_webhook_secret"`).toBeDefined();
    expect(tf.instances(secretBlock!)).toHaveLength(0);

    // Act
    const secretId = on.attribute(on.instances(secretBlock!)[0]!, 'secret_id');
    const binders = deployedFunctions(on)
      .filter((fn) => {
        const serviceBody = (fn.instance.block.body.service_config as HclBody[] | undefined)?.[0] ?? {};
        const secrets = dynamicBlocks(on, fn.instance, serviceBody, 'secret_environment_variables');
        return secrets.some((v) => v.key === 'GEMINI_WEBHOOK_SECRET' && v.secret === secretId);
      })
      .map((fn) => fn.entryPoint);
    const readers = grantsOf(on)
      .filter((g) => g.role === 'roles/secretmanager.secretAccessor')
      .filter((g) => on.attribute(g.instance, 'secret_id') === secretId)
      .flatMap((g) => g.members);

    // Assert
    const tick = deployedFunctions(on).find((fn) => fn.entryPoint === 'tick')!;
    expect(binders).toEqual(['tick']);
    expect(readers).toEqual([`serviceAccount:${tick.service.service_account_email}`]);
  });

  it('holds no variable loadConfig does not read', () => {
    const findings: string[] = [];

    for (const fn of functions) {
      const { env } = cloudEnvironment(fn);
      for (const name of Object.keys(env)) {
        if (name in PLATFORM_VARIABLES || configReads(env, name)) continue;
        findings.push(
          `${fn.where}: sets ${name}, which loadConfig (functions/platform/config.ts) ignores: a misspelt name, or one its schema should validate`,
        );
      }
    }

    expect(findings).toEqual([]);
  });

  it('gives tick its Batch API pending deadline from var.batch_pending_deadline_ms', () => {
    const tick = deployed('tick');
    const variable = module.variables.get('batch_pending_deadline_ms');

    expect(tick, `${TERRAFORM}: no function with entry point "tick"`).toBeDefined();
    expect(variable, `${TERRAFORM}/variables.tf: no variable "batch_pending_deadline_ms"`).toBeDefined();
    expect(
      expressionText(variable!.body.type),
      `${TERRAFORM}/${variable!.file} variable "batch_pending_deadline_ms": type`,
    ).toBe('number');
    expect(
      variable!.body.validation,
      `${TERRAFORM}/${variable!.file} variable "batch_pending_deadline_ms": validation`,
    ).toBeDefined();
    expect(
      cloudEnvironment(tick!).env.BATCH_PENDING_DEADLINE_MS,
      `${tick!.where}: BATCH_PENDING_DEADLINE_MS`,
    ).toBe(String(tf.variable('batch_pending_deadline_ms')));
  });

  it("builds every function on a runtime package.json's engines allow, and var.runtime accepts none older", async () => {
    const engines = (JSON.parse(await readRepoFile('package.json')) as { engines: { node: string } }).engines
      .node;
    const minMajor = Number(/^>=\s*(\d+)/.exec(engines)?.[1]);
    const majorOf = (runtime: unknown) => Number(/^nodejs(\d+)$/.exec(String(runtime))?.[1]);
    const accepted = [
      ...JSON.stringify(module.variables.get('runtime')?.body.validation ?? '').matchAll(/nodejs(\d+)/g),
    ].map((m) => Number(m[1]));

    expect(minMajor, `package.json engines.node: ${engines}`).toBeGreaterThan(0);
    expect(functions.length).toBeGreaterThan(0);
    for (const fn of functions) {
      const runtime = firstBlock(tf.attribute(fn.instance, 'build_config'))?.runtime;
      expect(majorOf(runtime), `${fn.where}: build_config.runtime ${show(runtime)}`).toBeGreaterThanOrEqual(
        minMajor,
      );
    }
    expect(
      accepted.length,
      `${TERRAFORM}/variables.tf: var.runtime's validation names no runtime`,
    ).toBeGreaterThan(0);
    expect(
      Math.min(...accepted),
      `${TERRAFORM}/variables.tf: var.runtime accepts nodejs${Math.min(...accepted)}`,
    ).toBeGreaterThanOrEqual(minMajor);
  });
});

describe('the queues', () => {
  it('are one per model of infra/quotas.json plus the control queue, with the grants that pause, resume and fill them', async () => {
    const findings: string[] = [];
    const models = Object.keys(
      (JSON.parse(await readRepoFile('infra/quotas.json')) as { models: object }).models,
    );
    const expected = new Map([
      ...models.map((m) => [queueIdForModel(m), `model ${m}`] as const),
      [CONTROL_QUEUE_ID, 'control'],
    ]);
    const queues = tf
      .blocksOf('google_cloud_tasks_queue')
      .flatMap((block) =>
        tf.instances(block).map((instance) => ({ instance, id: tf.attribute(instance, 'name') })),
      );

    for (const [id, what] of expected) {
      if (!queues.some((q) => q.id === id))
        findings.push(`${TERRAFORM}: no google_cloud_tasks_queue named ${id} (${what} of infra/quotas.json)`);
    }
    for (const q of queues) {
      if (!expected.has(q.id as string))
        findings.push(
          `${where(q.instance)}: queue ${show(q.id)} is not one of infra/quotas.json's models nor the control queue`,
        );
    }

    const runtime = (name: string) => `serviceAccount:${deployed(name)?.service.service_account_email}`;
    const queueGrants = grantsOf(tf).filter(
      (g) => g.instance.block.type === 'google_cloud_tasks_queue_iam_member',
    );
    // The queue each grant is on; a grant on a queue that is not declared is a finding of its own.
    const grantQueue = new Map<Grant, unknown>();
    for (const g of queueGrants) {
      try {
        grantQueue.set(g, tf.attribute(g.instance, 'name'));
      } catch (error) {
        findings.push(`${TERRAFORM}/${(error as Error).message}`);
      }
    }
    // A custom role (its id is known after apply) that holds exactly what pausing and resuming need.
    const pauses = (g: Grant) => {
      if (!(g.role instanceof Unknown) || g.role.origin?.block.type !== 'google_project_iam_custom_role')
        return false;
      const permissions = tf.attribute(g.role.origin, 'permissions') as string[];
      return (
        permissions.includes('cloudtasks.queues.pause') &&
        permissions.includes('cloudtasks.queues.resume') &&
        permissions.every((p) => /^cloudtasks\.queues\.(get|pause|resume)$/.test(p))
      );
    };
    const holds = (queue: string, role: string, member: string) =>
      queueGrants.some((g) => grantQueue.get(g) === queue && g.role === role && g.members.includes(member));
    for (const model of models) {
      const id = queueIdForModel(model);
      const queue = queues.find((q) => q.id === id);
      const at = queue ? where(queue.instance) : TERRAFORM;
      if (!holds(id, 'roles/cloudtasks.enqueuer', runtime('worker'))) {
        findings.push(
          `${at}: worker may not enqueue on ${id} (model ${model}): no roles/cloudtasks.enqueuer grant`,
        );
      }
      for (const fn of ['worker', 'tick']) {
        if (
          !queueGrants.some((g) => grantQueue.get(g) === id && pauses(g) && g.members.includes(runtime(fn)))
        ) {
          findings.push(
            `${at}: ${fn} may not pause/resume ${id} (model ${model}): no grant of a pause/resume role`,
          );
        }
      }
      // Nothing on a model queue may delete, purge or reconfigure it.
      for (const g of queueGrants) {
        if (grantQueue.get(g) === id && g.role === 'roles/cloudtasks.queueAdmin')
          findings.push(`${g.where}: roles/cloudtasks.queueAdmin on ${id} is more than pause/resume needs`);
      }
    }

    expect(findings).toEqual([]);
  });

  it('can be filled by every function whose code creates tasks: enqueuer on the control queue, actAs on the tasks account', async () => {
    const findings: string[] = [];
    const grants = grantsOf(tf);
    const tasksAccount = (fn: DeployedFunction) => cloudEnvironment(fn).env.TASKS_SERVICE_ACCOUNT;

    for (const fn of functions) {
      const name = String(fn.entryPoint);
      // Code creates tasks when it calls the task queue's enqueue methods or runs the lifecycle
      // (which starts a job's enqueuing and, in the reconciler, restarts it).
      const dir = join(ROOT, 'functions', name);
      const sources = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
      let createsTasks = false;
      for (const file of sources.filter((f) => f.endsWith('.ts'))) {
        const text = await readFile(join(dir, file), 'utf8');
        if (/\b(enqueueControl|enqueueItems|handOver)\b|from '\.\.\/lifecycle\//.test(text))
          createsTasks = true;
      }
      if (!createsTasks) continue;
      const member = `serviceAccount:${fn.service.service_account_email}`;
      const enqueuer = grants.some(
        (g) =>
          g.instance.block.type === 'google_cloud_tasks_queue_iam_member' &&
          tf.attribute(g.instance, 'name') === CONTROL_QUEUE_ID &&
          g.role === 'roles/cloudtasks.enqueuer' &&
          g.members.includes(member),
      );
      if (!enqueuer)
        findings.push(
          `${fn.where}: functions/${name}/ creates tasks, but ${name} may not enqueue on ${CONTROL_QUEUE_ID}`,
        );
      const actAs = grants.some(
        (g) =>
          g.instance.block.type === 'google_service_account_iam_member' &&
          String(tf.attribute(g.instance, 'service_account_id')).endsWith(`/${tasksAccount(fn)}`) &&
          g.role === 'roles/iam.serviceAccountUser' &&
          g.members.includes(member),
      );
      if (!actAs)
        findings.push(
          `${fn.where}: functions/${name}/ creates tasks, but ${name} may not act as ${tasksAccount(fn)} (the tasks' OIDC identity)`,
        );
    }

    expect(findings).toEqual([]);
  });
});

describe('the deploy account', () => {
  it('holds no basic role, and may grant only the project-level roles this module grants', () => {
    const findings: string[] = [];
    const deploy = tf.instances(tf.blocksOf('google_service_account').find((b) => b.name === 'deploy')!)[0]!;
    const member = `serviceAccount:${tf.attribute(deploy, 'email')}`;
    const projectGrants = tf
      .blocksOf('google_project_iam_member')
      .flatMap((block) => tf.instances(block))
      .map((instance) => ({
        instance,
        role: tf.attribute(instance, 'role'),
        member: tf.attribute(instance, 'member'),
        condition: firstBlock(tf.attribute(instance, 'condition')),
      }));
    const own = projectGrants.filter((g) => g.member === member);
    const others = new Set(projectGrants.filter((g) => g.member !== member).map((g) => g.role));

    for (const g of own) {
      if (['roles/owner', 'roles/editor', 'roles/iam.securityAdmin'].includes(String(g.role)))
        findings.push(`${where(g.instance)}: grants the deploy account ${String(g.role)}`);
      if (g.role === 'roles/resourcemanager.projectIamAdmin') {
        const expression = String(g.condition?.expression ?? '');
        const listed = /modifiedGrantsByRole', \[\]\)\.hasOnly\((\[.*\])\)$/.exec(expression);
        if (!listed) {
          findings.push(
            `${where(g.instance)}: projectIamAdmin without a condition on the roles it may grant`,
          );
          continue;
        }
        const grantable = JSON.parse(listed[1]!) as string[];
        for (const role of others) {
          if (!grantable.includes(String(role)))
            findings.push(`${where(g.instance)}: may not grant ${String(role)}, which this module grants`);
        }
        for (const role of grantable.filter((r) => !others.has(r)))
          findings.push(`${where(g.instance)}: may grant ${role}, which this module never grants`);
      }
    }
    if (!own.some((g) => g.role === 'roles/resourcemanager.projectIamAdmin'))
      findings.push(`${where(deploy)}: the deploy account may not make the project-level grants of iam.tf`);

    expect(findings).toEqual([]);
  });
});

describe('access', () => {
  it('grants nothing to allUsers or allAuthenticatedUsers, and refuses variables that would', () => {
    const findings: string[] = [];
    const mentionsPublic = (text: string) => PUBLIC_MEMBERS.some((m) => new RegExp(`\\b${m}\\b`).test(text));

    // Written anywhere but in a variable (whose validation may name them to refuse them).
    for (const block of module.blocks) {
      if (strings(block.body).some(mentionsPublic))
        findings.push(`${TERRAFORM}/${block.file} ${block.address}: names a public member`);
    }
    for (const [name, { file, value }] of module.locals) {
      if (strings(value).some(mentionsPublic))
        findings.push(`${TERRAFORM}/${file} local.${name}: names a public member`);
    }
    for (const grant of grantsOf(tf)) {
      const publicMembers = grant.members.filter((m) => PUBLIC_MEMBERS.includes(m as string));
      if (publicMembers.length > 0) findings.push(`${grant.where}: grants ${grant.role} to ${publicMembers}`);
    }
    // A variable that can put a public member into a grant must refuse it in its validation.
    const publicAlready = new Set(
      grantsOf(tf)
        .filter((g) => g.members.some((m) => PUBLIC_MEMBERS.includes(m as string)))
        .map((g) => g.where),
    );
    for (const [name, variable] of module.variables) {
      const type = expressionText(variable.body.type);
      for (const member of PUBLIC_MEMBERS) {
        const value = /^(list|set|tuple)\(/.test(type) ? [member] : type === 'string' ? member : undefined;
        if (value === undefined) continue;
        const poisoned = new TerraformEvaluator(module, { ...tfvars, [name]: value });
        let granted: Grant[];
        try {
          granted = grantsOf(poisoned).filter(
            (g) => g.members.includes(member) && !publicAlready.has(g.where),
          );
        } catch {
          continue; // the configuration cannot even be evaluated with that value
        }
        if (granted.length === 0) continue;
        const validations = (variable.body.validation ?? []) as HclBody[];
        const refused = validations.some((v) => {
          try {
            return poisoned.value(v.condition) === false;
          } catch {
            return true;
          }
        });
        if (!refused) {
          findings.push(
            `${TERRAFORM}/${variable.file} variable "${name}": the value ${JSON.stringify(value)} would grant ${member} on ${granted.map((g) => g.where)}, and no validation refuses it`,
          );
        }
      }
    }

    expect(findings).toEqual([]);
  });
});

describe('intake', () => {
  it("is triggered by the fanout bucket's finalize events, retried, with the grants Eventarc needs", () => {
    const findings: string[] = [];
    const intake = deployed('intake');
    expect(intake, `${TERRAFORM}: no function with entry point "intake"`).toBeDefined();
    const triggers = eventTriggers(tf, intake!.instance);
    expect(triggers, `${intake!.where}: event triggers`).toHaveLength(1);
    const trigger = triggers[0]!;
    const bucket = cloudEnvironment(intake!).env.FANOUT_BUCKET;
    const grants = grantsOf(tf);

    if (trigger.event_type !== STORAGE_FINALIZED) {
      findings.push(
        `${intake!.where}: event_trigger.event_type is ${show(trigger.event_type)}, not ${STORAGE_FINALIZED}`,
      );
    }
    const filters = (trigger.event_filters ?? []) as Array<Record<string, unknown>>;
    const filtered = filters.map((f) => ({ attribute: f.attribute, value: f.value, operator: f.operator }));
    if (
      !(
        filters.length === 1 &&
        filtered[0]?.attribute === 'bucket' &&
        filtered[0].value === bucket &&
        !filtered[0].operator
      )
    ) {
      findings.push(
        `${intake!.where}: event_trigger filters ${show(filtered)}, not exactly bucket = FANOUT_BUCKET (${bucket})`,
      );
    }
    if (trigger.retry_policy !== 'RETRY_POLICY_RETRY') {
      findings.push(
        `${intake!.where}: event_trigger.retry_policy is ${show(trigger.retry_policy)}: intake throws to be retried, so it must be RETRY_POLICY_RETRY`,
      );
    }
    const bucketResource = tf
      .blocksOf('google_storage_bucket')
      .flatMap((b) => tf.instances(b))
      .find((b) => tf.attribute(b, 'name') === bucket);
    if (!bucketResource) {
      findings.push(
        `${intake!.where}: FANOUT_BUCKET ${bucket} is not a google_storage_bucket of ${TERRAFORM}`,
      );
    } else if (
      String(tf.attribute(bucketResource, 'location')).toLowerCase() !==
      String(trigger.trigger_region).toLowerCase()
    ) {
      findings.push(
        `${intake!.where}: event_trigger.trigger_region ${show(trigger.trigger_region)} is not the location of ${where(bucketResource)}`,
      );
    }

    const account = trigger.service_account_email;
    const member = `serviceAccount:${account}`;
    if (typeof account !== 'string') {
      findings.push(
        `${intake!.where}: event_trigger.service_account_email is ${show(account)}: give the trigger its own account`,
      );
    } else {
      if (!grants.some((g) => g.role === 'roles/eventarc.eventReceiver' && g.members.includes(member))) {
        findings.push(
          `${intake!.where}: the trigger's account ${account} lacks roles/eventarc.eventReceiver`,
        );
      }
      const invokes = grants.some(
        (g) =>
          g.role === 'roles/run.invoker' &&
          g.members.includes(member) &&
          grantedFunction(tf, g) === intake!.instance,
      );
      if (!invokes)
        findings.push(
          `${intake!.where}: the trigger's account ${account} may not invoke intake (roles/run.invoker)`,
        );
    }
    // Cloud Storage publishes the events to Eventarc's Pub/Sub topic as its service agent.
    const publisher = grants.some(
      (g) =>
        g.role === 'roles/pubsub.publisher' &&
        g.members.some(
          (m) => m instanceof Unknown && m.origin?.block.type === 'google_storage_project_service_account',
        ),
    );
    if (!publisher) {
      const agent = tf.blocksOf('google_storage_project_service_account', 'data')[0];
      findings.push(
        `${agent ? `${TERRAFORM}/${agent.file} ${agent.address}` : `${TERRAFORM}: data google_storage_project_service_account`}: the Cloud Storage service agent lacks roles/pubsub.publisher (it publishes intake's events to Eventarc's topic)`,
      );
    }

    expect(findings).toEqual([]);
  });

  it('has the time and memory to stream a big file: the event maximum of 540 s, at least 512 MiB', () => {
    const intake = deployed('intake');
    expect(intake, `${TERRAFORM}: no function with entry point "intake"`).toBeDefined();

    expect(intake!.service.timeout_seconds, `${intake!.where}: service_config.timeout_seconds`).toBe(
      EVENT_FUNCTION_MAX_TIMEOUT_SECONDS,
    );
    expect(
      memoryMiB(intake!.service.available_memory),
      `${intake!.where}: service_config.available_memory`,
    ).toBeGreaterThanOrEqual(512);
  });
});

describe('tick', () => {
  it("is ticked by a scheduler job with an OIDC token of an account whose only grant is invoking tick, within tick's timeout", () => {
    const findings: string[] = [];
    const tick = deployed('tick');
    expect(tick, `${TERRAFORM}: no function with entry point "tick"`).toBeDefined();
    const grants = grantsOf(tf);
    const jobs = tf
      .blocksOf('google_cloud_scheduler_job')
      .flatMap((block) => tf.instances(block))
      .filter((job) => {
        const uri = firstBlock(tf.attribute(job, 'http_target'))?.uri;
        return uri instanceof Unknown && uri.origin === tick!.instance;
      });

    if (jobs.length === 0) findings.push(`${TERRAFORM}: no google_cloud_scheduler_job calls ${tick!.where}`);
    for (const job of jobs) {
      const target = firstBlock(tf.attribute(job, 'http_target'))!;
      const oidc = firstBlock(target.oidc_token);
      const account = oidc?.service_account_email;
      if (typeof account !== 'string') {
        findings.push(`${where(job)}: http_target has no oidc_token with a service account`);
        continue;
      }
      if (!(oidc!.audience instanceof Unknown && oidc!.audience.origin === tick!.instance)) {
        findings.push(`${where(job)}: the OIDC audience ${show(oidc!.audience)} is not tick's URL`);
      }
      if (functions.some((f) => f.service.service_account_email === account)) {
        findings.push(`${where(job)}: signs as ${account}, a function's runtime account, not one of its own`);
      }
      const held = grants.filter((g) => g.members.includes(`serviceAccount:${account}`));
      const invokesTick = held.filter(
        (g) => g.role === 'roles/run.invoker' && grantedFunction(tf, g) === tick!.instance,
      );
      if (invokesTick.length === 0) findings.push(`${where(job)}: ${account} may not invoke tick`);
      for (const g of held.filter((g) => !invokesTick.includes(g))) {
        findings.push(
          `${g.where}: grants ${g.role} to the scheduler's account ${account}; its only grant should be invoking tick`,
        );
      }
      const deadline = /^(\d+(?:\.\d+)?)s$/.exec(String(tf.attribute(job, 'attempt_deadline')));
      const timeout = tick!.service.timeout_seconds;
      if (!deadline || typeof timeout !== 'number' || timeout < Number(deadline[1])) {
        findings.push(
          `${tick!.where}: timeout_seconds ${show(timeout)} does not cover ${where(job)}'s attempt_deadline ${show(tf.attribute(job, 'attempt_deadline'))}`,
        );
      }
    }

    expect(findings).toEqual([]);
  });
});

describe('cloudbuild.yaml', () => {
  it('names every step and deploys only after the test suite has passed', () => {
    const findings: string[] = [];
    const ids = steps.map((s) => s.id);

    expect(steps.length, 'cloudbuild.yaml: no steps').toBeGreaterThan(0);
    steps.forEach((step, index) => {
      if (!step.id) findings.push(`${stepLabel(step, index)}: has no id`);
      else if (ids.indexOf(step.id) !== index) findings.push(`${stepLabel(step, index)}: id used twice`);
      for (const id of step.waitFor ?? []) {
        if (id !== '-' && !ids.slice(0, index).includes(id))
          findings.push(`${stepLabel(step, index)}: waits for "${id}", no earlier step`);
      }
    });
    const tests = steps.flatMap((s, i) => (isTestStep(s) ? [i] : []));
    const deploys = steps.flatMap((s, i) => (isDeployStep(s) ? [i] : []));
    if (tests.length === 0) findings.push('cloudbuild.yaml: no step runs the test suite (npm test)');
    if (deploys.length === 0) findings.push('cloudbuild.yaml: no step deploys (terraform apply)');
    for (const d of deploys) {
      const before = stepDependencies(steps, d);
      for (const t of tests.filter((t) => !before.has(t))) {
        findings.push(
          `${stepLabel(steps[d]!, d)}: deploys without waiting, directly or through waitFor, for ${stepLabel(steps[t]!, t)}`,
        );
      }
    }

    expect(findings).toEqual([]);
  });

  it('gives the test step a terraform binary (queues-tf.test.ts runs `terraform console`)', () => {
    const findings: string[] = [];

    steps.forEach((step, index) => {
      if (!isTestStep(step) || /terraform/i.test(step.name ?? '')) return;
      const before = [...stepDependencies(steps, index)].map((i) => steps[i]!);
      const provider = before.find(
        (s) => /terraform/i.test(s.name ?? '') && !isDeployStep(s) && /\bcp\b/.test(stepText(s)),
      );
      if (!provider) {
        findings.push(
          `${stepLabel(step, index)}: runs in ${step.name}, which has no terraform, and waits for no step that copies one from the Terraform image`,
        );
      } else if (!/\bPATH=/.test(stepText(step))) {
        findings.push(
          `${stepLabel(step, index)}: does not put the terraform that step ${provider.id} copies on PATH`,
        );
      }
    });

    expect(findings).toEqual([]);
  });

  it('pulls every image by digest (a digest substitution with no default, or a literal sha256), never by a bare tag', async () => {
    const findings: string[] = [];
    const build = parseYaml(await readRepoFile('cloudbuild.yaml')) as {
      substitutions?: Record<string, string>;
    };
    const substitutions = build.substitutions ?? {};
    const DIGEST = /^sha256:[0-9a-f]{64}$/;

    steps.forEach((step, index) => {
      const name = String(step.name ?? '');
      const pinned = /^(?:[^@\s]+)@(?:sha256:[0-9a-f]{64}|\$\{(_[A-Z0-9_]+)\})$/.exec(name);
      if (!pinned) {
        findings.push(
          `${stepLabel(step, index)}: image ${name} is not pinned by digest (IMAGE@sha256:… or IMAGE@\${_…_DIGEST})`,
        );
        return;
      }
      const variable = pinned[1];
      if (variable === undefined) return;
      const value = substitutions[variable];
      if (value === undefined)
        findings.push(`${stepLabel(step, index)}: ${variable} is not a substitution of cloudbuild.yaml`);
      else if (value !== '' && !DIGEST.test(value))
        findings.push(
          `${stepLabel(step, index)}: ${variable} is ${JSON.stringify(value)}, neither required ("") nor a sha256 digest`,
        );
    });

    expect(findings).toEqual([]);
  });

  it('runs no install script and deploys as the deploy account of deploy.tf, logging to Cloud Logging', async () => {
    const build = parseYaml(await readRepoFile('cloudbuild.yaml')) as {
      serviceAccount?: string;
      options?: { logging?: string };
    };
    const installs = steps.filter((s) => /\bnpm\s+(ci|install|i)\b/.test(stepText(s)));
    const account = tf.attribute(
      tf.instances(tf.blocksOf('google_service_account').find((b) => b.name === 'deploy')!)[0]!,
      'account_id',
    );

    expect(installs.length).toBeGreaterThan(0);
    for (const step of installs) expect(stepText(step), String(step.id)).toMatch(/--ignore-scripts\b/);
    expect(build.serviceAccount).toBe(
      `projects/\${PROJECT_ID}/serviceAccounts/${String(account)}@\${PROJECT_ID}.iam.gserviceaccount.com`,
    );
    expect(build.options?.logging).toBe('CLOUD_LOGGING_ONLY');
  });

  it('deploys with the Terraform version the test helpers and .ci/run tell a newcomer to install', async () => {
    const build = parseYaml(await readRepoFile('cloudbuild.yaml')) as {
      substitutions?: Record<string, string>;
    };
    const ci = await readRepoFile('.ci/run');

    const image = build.substitutions?._TERRAFORM_IMAGE ?? '';

    expect(image).toBe(`hashicorp/terraform:${TERRAFORM_VERSION}`);
    expect(ci).toContain(`releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/`);
    expect(ci).toContain(`terraform_${TERRAFORM_VERSION}_linux_`);
  });
});
