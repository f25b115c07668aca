/**
 * `gemini-fanout doctor`: checks a live setup end to end with the official clients and prints a
 * table (check | result | what to fix). Where it looks: against the local cloud found through
 * `.local/stack.json` (no --url, no FANOUT_URL) everything comes from that file; otherwise from the
 * variables the functions take (GOOGLE_CLOUD_PROJECT, REGION, FANOUT_BUCKET, GEMINI_API_KEY,
 * GEMINI_BASE_URL, CLOUD_TASKS_EMULATOR_HOST, STORAGE_EMULATOR_HOST). The quotas are `--quotas`,
 * else QUOTAS_FILE, else the bundled infra/quotas.json. Exit code 0 when every required check
 * passed, 1 when one failed.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import type { Quotas } from '../functions/core/quotas.js';
import { readQuotas } from '../functions/platform/config.js';
import { createBatchApi } from '../functions/platform/gemini/batch-api.js';
import { createGeminiClient } from '../functions/platform/gemini/client.js';
import { checkBatch } from './doctor-batch.js';
import {
  type BucketReader,
  type CheckResult,
  checkAdc,
  checkBucket,
  checkGemini,
  checkGeminiKey,
  checkIngest,
  checkQueues,
  checkServiceAccounts,
  type QueueReader,
} from './doctor-checks.js';
import {
  checkVertexTarget,
  type VertexSettings,
  vertexAdcProject,
  vertexAdvice,
  vertexBatchApi,
  vertexOf,
} from './doctor-vertex.js';
import { CliError, EXIT } from './exit-codes.js';
import { STACK_FILE, type Target } from './target.js';

/** Google's Gemini endpoint, when GEMINI_BASE_URL does not say otherwise. */
const GOOGLE_GEMINI = 'https://generativelanguage.googleapis.com';
/** The local cloud's region (the functions' REGION default, which `npm run dev` keeps). */
const DEFAULT_REGION = 'us-central1';

/** Where the checks look. */
export interface DoctorSettings {
  projectId?: string | undefined;
  region: string;
  bucket?: string | undefined;
  apiKey?: string | undefined;
  geminiBaseUrl?: string | undefined;
  tasksEmulatorHost?: string | undefined;
  storageEmulatorHost?: string | undefined;
  /** The local stand-in is Gemini (no key needed). */
  standIn: boolean;
  /** GOOGLE_GENAI_USE_VERTEXAI: Gemini on Vertex AI (ADC, a project and location; no key). */
  vertex?: VertexSettings | undefined;
  quotas: Quotas;
  quotasFrom: string;
}

export interface DoctorOptions {
  quotas?: string;
  batch?: boolean;
  batchTimeout?: number;
}

/** The settings: from the stack file when the target came from it, else from the environment. */
export async function doctorSettings(
  target: Target,
  env: NodeJS.ProcessEnv,
  opts: DoctorOptions,
  stackFile = STACK_FILE,
): Promise<DoctorSettings> {
  const quotasPath = opts.quotas ?? env.QUOTAS_FILE;
  let quotas: Quotas;
  try {
    quotas = readQuotas(quotasPath ? resolve(quotasPath) : undefined);
  } catch (err) {
    throw new CliError(`quotas: ${(err as Error).message}`, EXIT.badInput);
  }
  const quotasFrom = quotasPath ?? 'infra/quotas.json';
  if (target.from.startsWith('.local/stack.json')) {
    const stack = JSON.parse(await readFile(stackFile, 'utf8')) as Record<string, string | undefined>;
    return {
      projectId: stack.projectId,
      region: DEFAULT_REGION,
      bucket: stack.bucket,
      apiKey: env.GEMINI_API_KEY,
      // Empty when `npm run dev` ran with GEMINI_API_KEY: the functions then call Google's Gemini.
      geminiBaseUrl: stack.geminiBaseUrl || undefined,
      tasksEmulatorHost: stack.tasksEmulatorHost,
      storageEmulatorHost: stack.storageEmulatorHost,
      standIn: Boolean(stack.geminiBaseUrl) && !env.GEMINI_API_KEY,
      quotas,
      quotasFrom,
    };
  }
  return {
    projectId: env.GOOGLE_CLOUD_PROJECT,
    region: env.REGION ?? DEFAULT_REGION,
    bucket: env.FANOUT_BUCKET,
    apiKey: env.GEMINI_API_KEY,
    geminiBaseUrl: env.GEMINI_BASE_URL,
    tasksEmulatorHost: env.CLOUD_TASKS_EMULATOR_HOST,
    storageEmulatorHost: env.STORAGE_EMULATOR_HOST,
    // As the functions' config decides: a base URL without a key is the local stand-in.
    standIn: Boolean(env.GEMINI_BASE_URL) && !env.GEMINI_API_KEY,
    vertex: vertexOf(env),
    quotas,
    quotasFrom,
  };
}

/** Runs every check in order; the Batch round trip only with `--batch` (it costs cents). */
export async function runDoctor(
  target: Target,
  s: DoctorSettings,
  opts: DoctorOptions,
): Promise<CheckResult[]> {
  const emulatorsOnly = Boolean(s.tasksEmulatorHost && s.storageEmulatorHost) && target.local;
  const baseUrl = s.geminiBaseUrl ?? GOOGLE_GEMINI;
  const key = s.apiKey ?? (s.standIn ? 'local-stand-in' : undefined);
  const model = s.quotas.defaultModel;
  if (s.vertex)
    return [...(await vertexGeminiChecks(s, s.vertex, model, opts)), ...(await cloudChecks(target, s))];
  const results: CheckResult[] = [
    checkGeminiKey(s),
    await checkAdc({ emulatorsOnly, projectOf: adcProject }),
  ];
  if (key) {
    const gemini = createGeminiClient({ apiKey: key, baseUrl, timeoutMs: 30_000 });
    results.push(await checkGemini({ gemini, model, baseUrl }));
    if (opts.batch) {
      results.push(
        await checkBatch({
          batch: createBatchApi({ apiKey: key, baseUrl }),
          model,
          timeoutMs: (opts.batchTimeout ?? 900) * 1000,
          pollMs: s.standIn ? 500 : 10_000,
          sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
          now: Date.now,
        }),
      );
    }
  } else {
    const why = 'no GEMINI_API_KEY to call it with (see the row above)';
    results.push({ check: 'Gemini reachable', status: 'skipped', detail: why, required: false });
  }
  return [...results, ...(await cloudChecks(target, s))];
}

/** The rows after Gemini's, the same on both APIs: queues, bucket, ingest, service accounts. */
async function cloudChecks(target: Target, s: DoctorSettings): Promise<CheckResult[]> {
  return [
    await queuesCheck(s),
    ...(await checkBucket({ bucket: s.bucket, ...(s.bucket ? { reader: bucketReader(s) } : {}) })),
    await checkIngest({ url: target.url, list: () => target.client.list({ pageSize: 1 }) }),
    checkServiceAccounts(target.local),
  ];
}

/** Gemini's rows on Vertex AI: the target, ADC, a call through Vertex's paths, `--batch` by prediction. */
async function vertexGeminiChecks(
  s: DoctorSettings,
  v: VertexSettings,
  model: string,
  opts: DoctorOptions,
): Promise<CheckResult[]> {
  const adc = await checkAdc({ emulatorsOnly: false, projectOf: () => vertexAdcProject(v) });
  const results = [checkVertexTarget(v), adc];
  if (!v.project) return results;
  const vertex = { project: v.project, location: v.location };
  const gemini = createGeminiClient({
    apiKey: '',
    vertex,
    timeoutMs: 30_000,
    ...(s.geminiBaseUrl ? { baseUrl: s.geminiBaseUrl } : {}),
  });
  const where = s.geminiBaseUrl ?? `Vertex AI (${v.location})`;
  results.push(
    await checkGemini({ gemini, model, baseUrl: where, advice: (err) => vertexAdvice(err, v, model) }),
  );
  if (opts.batch) {
    const batch = await vertexBatchApi(v, s);
    results.push(
      batch
        ? await checkBatch({
            batch,
            model,
            timeoutMs: (opts.batchTimeout ?? 900) * 1000,
            pollMs: s.geminiBaseUrl ? 500 : 30_000,
            sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
            now: Date.now,
          })
        : {
            check: 'Batch round trip',
            status: 'skipped',
            detail: 'needs FANOUT_BUCKET (Vertex batch prediction reads and writes it)',
            required: false,
          },
    );
  }
  return results;
}

/** Exit code: 1 when a required check failed. */
export function doctorExitCode(results: CheckResult[]): number {
  return results.some((r) => r.required && r.status === 'fail') ? EXIT.itemsFailed : EXIT.ok;
}

const RESULT_WORD = { ok: 'ok', fail: 'FAIL', skipped: 'skipped' } as const;

/** The table: check | result | what to fix; a failed optional check reads "warn". */
export function renderDoctorTable(results: CheckResult[]): string {
  const rows = results.map((r) => [
    r.check,
    `${r.status === 'fail' && !r.required ? 'warn' : RESULT_WORD[r.status]}: ${r.detail}`,
    r.fix ?? '', // only failures carry a fix
  ]);
  const header = ['check', 'result', 'what to fix'];
  const widths = [0, 1].map((i) => Math.max(header[i]!.length, ...rows.map((row) => row[i]!.length)));
  // A row without a fix ends at its result (no trailing separator, no trailing blanks).
  const line = (cells: string[]) =>
    cells
      .filter((c, i) => i < 2 || c)
      .map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c))
      .join(' | ')
      .trimEnd();
  const failed = results.filter((r) => r.status === 'fail');
  const required = failed.filter((r) => r.required).length;
  const summary = failed.length
    ? `${required} required check(s) failed, ${failed.length - required} warning(s)`
    : 'every check passed';
  return [
    line(header),
    widths
      .map((w) => '-'.repeat(w))
      .concat('-'.repeat(11))
      .join('-|-'),
    ...rows.map(line),
    '',
    summary,
  ].join('\n');
}

async function queuesCheck(s: DoctorSettings): Promise<CheckResult> {
  if (!s.projectId)
    return {
      check: 'queues vs quotas',
      status: 'fail',
      detail: 'GOOGLE_CLOUD_PROJECT is not set',
      fix: 'export GOOGLE_CLOUD_PROJECT=<the project> (and REGION, us-central1 by default)',
      required: true,
    };
  const { CloudTasksClient } = await import('@google-cloud/tasks');
  const { emulatorClientOptions } = await import('../functions/platform/task-queue.js');
  const client = new CloudTasksClient(
    s.tasksEmulatorHost ? emulatorClientOptions(s.tasksEmulatorHost) : undefined,
  );
  const getQueue: QueueReader = async (id) => {
    try {
      const [queue] = await client.getQueue({ name: client.queuePath(s.projectId!, s.region, id) });
      const r = queue.rateLimits ?? {};
      return {
        maxDispatchesPerSecond: r.maxDispatchesPerSecond ?? 0,
        maxBurstSize: r.maxBurstSize ?? 0,
        maxConcurrentDispatches: r.maxConcurrentDispatches ?? 0,
      };
    } catch (err) {
      if ((err as { code?: number }).code === 5) return undefined; // NOT_FOUND
      throw err;
    }
  };
  try {
    return await checkQueues({ getQueue, quotas: s.quotas, quotasFrom: s.quotasFrom });
  } finally {
    await client.close();
  }
}

function bucketReader(s: DoctorSettings): BucketReader {
  const storage = import('@google-cloud/storage').then(
    ({ Storage }) =>
      new Storage({
        ...(s.projectId ? { projectId: s.projectId } : {}),
        // A custom endpoint goes without credentials (the client's useAuthWithCustomEndpoint default).
        ...(s.storageEmulatorHost ? { apiEndpoint: s.storageEmulatorHost } : {}),
      }),
  );
  const bucket = async () => (await storage).bucket(s.bucket!);
  return {
    exists: async () => (await (await bucket()).exists())[0],
    notificationEventTypes: async () => {
      if (s.storageEmulatorHost) return undefined;
      const [configs] = await (await bucket()).getNotifications();
      return configs.map((c) => (c.metadata.event_types as string[] | undefined) ?? []);
    },
  };
}

async function adcProject(): Promise<string> {
  const { GoogleAuth } = await import('google-auth-library');
  const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  await auth.getClient();
  return auth.getProjectId();
}

/** What `doctor --help` adds: where it looks, and its exit code. */
export const DOCTOR_HELP = `Against the local cloud (.local/stack.json) every setting comes from that file; with --url or
FANOUT_URL from GOOGLE_CLOUD_PROJECT, REGION, FANOUT_BUCKET, GEMINI_API_KEY and GEMINI_BASE_URL; with
GOOGLE_GENAI_USE_VERTEXAI=true Gemini is checked on Vertex AI (GOOGLE_CLOUD_LOCATION, ADC, no key).
Exit code of doctor: 0 when every required check passed, 1 when one failed (the table says what to fix).`;

/** `--batch-timeout SECONDS`: a whole number from 10 to 86,400 (the Batch API's 24 h). */
export function batchTimeoutSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 10 || n > 86_400)
    throw new InvalidArgumentError('must be a whole number of seconds from 10 to 86400');
  return n;
}
