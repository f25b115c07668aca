import { readFileSync } from 'node:fs';
import { z } from 'zod';
import bundledQuotas from '../../infra/quotas.json' with { type: 'json' };
import { mediaAccessProblems } from '../core/owner-prefix.js';
import { MAX_ITEMS_PER_TASK, parseQuotas, type Quotas } from '../core/quotas.js';
import { bucketEnv, bucketFrom, mediaFrom } from './bucket-config.js';
import { hostPort, httpUrl } from './env-fields.js';
import { IDENTITY_HOW_TO_FIX, identityEnv, identityFrom, pageTokenKey } from './identity-config.js';
import { quotasFor, VERTEX_HOW_TO_FIX, type VertexTarget, vertexEnv, vertexFrom } from './vertex-config.js';

/** Every environment variable the functions read. Nothing else reads `process.env`. */
const envSchema = z.object({
  GEMINI_API_KEY: z.string().min(1).optional(),
  GEMINI_BASE_URL: httpUrl.optional(),
  GOOGLE_CLOUD_PROJECT: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'expected a project id')
    .default('fanout-local'),
  REGION: z.string().min(1).default('us-central1'),
  FANOUT_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/, 'expected a bucket name')
    .optional(),
  FIRESTORE_EMULATOR_HOST: hostPort,
  STORAGE_EMULATOR_HOST: httpUrl.optional(),
  CLOUD_TASKS_EMULATOR_HOST: hostPort,
  WORKER_URL: httpUrl.optional(),
  TASKS_SERVICE_ACCOUNT: z.email({ error: 'expected a service account email' }).optional(),
  /** Path to a quotas file of the same schema as infra/quotas.json; the bundled file otherwise. */
  QUOTAS_FILE: z.string().min(1).optional(),
  /** How long the worker waits for one Gemini answer. */
  GEMINI_TIMEOUT_MS: z.coerce.number().int().min(1000).max(1_700_000).default(300_000),
  /**
   * How long the worker waits for one Flex answer (mode `flex`): Flex answers within 1–15 minutes
   * and Google asks clients for timeouts of 10 minutes or more. Item tasks' dispatch deadline and
   * leases fit the longer of the two timeouts.
   */
  GEMINI_FLEX_TIMEOUT_MS: z.coerce.number().int().min(1000).max(1_700_000).default(600_000),
  /** Items one task carries at most (1: a task per item); overrides the quotas file's `itemsPerTask`. */
  ITEMS_PER_TASK: z.coerce.number().int().min(1).max(MAX_ITEMS_PER_TASK).optional(),
  /** How long a job's enqueuing or a half-done cancel may stand still before the reconciler acts. */
  RECONCILE_AFTER_MS: z.coerce.number().int().min(1000).max(3_600_000).default(120_000),
  /** How long a Gemini batch may stay PENDING before its items go back to the realtime path. */
  BATCH_PENDING_DEADLINE_MS: z.coerce.number().int().min(1000).default(86_400_000),
  /** Failed ticks in a row on one Batch step (download, poll, upload, cancel) before its items go back. */
  BATCH_STEP_MAX_FAILURES: z.coerce.number().int().min(1).default(30),
  /** How long one Batch step may keep failing before its items go back, however few its failures. */
  BATCH_STEP_MAX_MS: z.coerce.number().int().min(60_000).default(10_800_000),
  ...bucketEnv,
  /** Days jobs and items are kept (Firestore TTL on `expireAt`, from their creation). */
  RETENTION_DAYS: z.coerce.number().int().min(3).max(3650).default(30),
  /**
   * Hours an answer is served from the response cache to the same owner's identical requests
   * (worker/response-cache.ts); 0 turns the cache off. A cached answer too big for Firestore points
   * at its job's object in the bucket, which goes after RETENTION_DAYS: once gone, it is a miss.
   */
  RESPONSE_CACHE_TTL_HOURS: z.coerce.number().min(0).max(720).default(24),
  /** The key callbacks are signed with (HMAC-SHA256); bound from Secret Manager in the cloud. */
  CALLBACK_SECRET: z.string().min(32, 'expected at least 32 characters').optional(),
  /** How long after a job ends the tick keeps retrying its callback (at-least-once; 24 h by default). */
  CALLBACK_RETRY_MS: z.coerce
    .number()
    .int()
    .min(60_000)
    .max(7 * 86_400_000)
    .default(86_400_000),
  ...identityEnv,
  /**
   * The signing secret of Gemini's batch webhooks (`whsec_…`, returned once when the webhook is
   * registered; README "The Batch API path"): tick's `POST /gemini-webhook` takes only events it
   * signed. Unset: that route answers 404 and polling alone moves batches on.
   */
  GEMINI_WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+=*$/, 'expected a Standard Webhooks secret (whsec_<base64>)')
    .optional(),
  /** The HMAC key of page tokens; derived from CALLBACK_SECRET when unset (a fixed key locally). */
  PAGE_TOKEN_SECRET: z.string().min(32, 'expected at least 32 characters').optional(),
  /** Open result and event streams one caller may hold on one ingest instance; more get 429. */
  FANOUT_STREAMS_PER_CALLER: z.coerce.number().int().min(1).max(1000).default(10),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  ...vertexEnv,
});

const HOW_TO_FIX: Record<string, string> = {
  GEMINI_API_KEY: 'set it to a Gemini Developer API key (Secret Manager in the cloud)',
  GEMINI_BASE_URL:
    'set it to the base URL of the Gemini API or the local stand-in, e.g. http://127.0.0.1:8790',
  GOOGLE_CLOUD_PROJECT: 'set it to the id of the Google Cloud project',
  FANOUT_BUCKET: 'set it to the bucket that holds inbox/, staging/ and results/',
  FIRESTORE_EMULATOR_HOST: 'unset it in the cloud; locally `npm run dev` sets it',
  STORAGE_EMULATOR_HOST: 'unset it in the cloud; locally `npm run dev` sets it, e.g. http://127.0.0.1:9199',
  CLOUD_TASKS_EMULATOR_HOST: 'unset it in the cloud; locally `npm run dev` sets it',
  WORKER_URL: 'set it to the HTTPS URL of the worker function (Terraform outputs it)',
  TASKS_SERVICE_ACCOUNT: 'set it to the service account Cloud Tasks signs OIDC tokens with',
  GEMINI_WEBHOOK_SECRET:
    "set it to the webhook's signing secret Gemini returned when it was registered (Secret Manager in the cloud)",
  ...IDENTITY_HOW_TO_FIX,
  ...VERTEX_HOW_TO_FIX,
};

export interface Config {
  projectId: string;
  region: string;
  bucket: string;
  /**
   * `apiKey` is absent where no key is bound (ingest and intake in the cloud, which never call
   * Gemini): read it through {@link requireGeminiKey}, which names the variable when it is missing.
   */
  gemini: {
    apiKey?: string;
    baseUrl?: string;
    local: boolean;
    timeoutMs: number;
    flexTimeoutMs: number;
    /** Set when Gemini is called on Vertex AI (GOOGLE_GENAI_USE_VERTEXAI): ADC, no key. */
    vertex?: VertexTarget;
  };
  /**
   * Cloud Tasks' dispatch deadline of an item task: the worker's longest wait for Gemini plus a
   * margin, within the service's 15 s – 30 min. A worker that outlives it would be delivered again
   * while it still runs.
   */
  dispatchDeadlineSeconds: number;
  /** How long a delivery owns an item: longer than any delivery can run. */
  leaseMs: number;
  /** See RECONCILE_AFTER_MS. */
  reconcileAfterMs: number;
  /** See BATCH_PENDING_DEADLINE_MS. */
  batchPendingDeadlineMs: number;
  /** See BATCH_STEP_MAX_FAILURES. */
  batchStepMaxFailures: number;
  /** See BATCH_STEP_MAX_MS. */
  batchStepMaxMs: number;
  emulators: { firestore?: string; storage?: string; tasks?: string };
  /** True when every Google service is an emulator: the local cloud. */
  local: boolean;
  workerUrl?: string;
  tasksServiceAccount?: string;
  /** See FANOUT_ADMINS. */
  admins: string[];
  /**
   * See MEDIA_GCS_ALLOWED: the media roots (`gs://bucket/prefix/`); a job reads its owner's folder
   * in each (core/owner-prefix.ts `mediaLocationsFor`).
   */
  mediaGcsAllowed: string[];
  /** See MEDIA_GCS_SHARED: read-only media prefixes every job may read. */
  mediaGcsShared: string[];
  /** See FANOUT_BUCKET_OWNERS: owner prefix → identity, for files under `inbox/{prefix}/`. */
  bucketOwners: Record<string, string>;
  /** See BUCKET_MAX_LINES and BUCKET_MAX_BYTES. */
  bucketCaps: { maxLines: number; maxBytes: number };
  /** See RETENTION_DAYS, in milliseconds. */
  retentionMs: number;
  /** See RESPONSE_CACHE_TTL_HOURS, in milliseconds (0: no cache). */
  responseCacheTtlMs: number;
  /** See CALLBACK_SECRET; a fixed local key when every service is an emulator. */
  callbackSecret?: string;
  /** See CALLBACK_RETRY_MS. */
  callbackRetryMs: number;
  /** How ID tokens are verified: see FANOUT_AUDIENCES, FANOUT_ID_ISSUER, FANOUT_ID_CERTS_URL. */
  identity: { audiences: string[]; extraIssuers: string[]; certsUrl?: string; acceptStripped: boolean };
  /** See TICK_URL and SCHEDULER_SERVICE_ACCOUNT. */
  tickUrl?: string;
  schedulerServiceAccount?: string;
  /** See GEMINI_WEBHOOK_SECRET (absent: no webhook route). A secret: never log it. */
  geminiWebhookSecret?: string;
  /** See PAGE_TOKEN_SECRET; this instance's own when neither it nor CALLBACK_SECRET is set in the cloud. */
  pageTokenKey: string;
  /** See FANOUT_STREAMS_PER_CALLER. */
  streamsPerCaller: number;
  quotas: Quotas;
  logLevel: string;
}

/** The error `loadConfig` throws: one line per bad variable, each with how to fix it. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates a quotas file, or the bundled `infra/quotas.json` when no path is given. */
export function readQuotas(path?: string): Quotas {
  return path
    ? parseQuotas(JSON.parse(readFileSync(path, 'utf8')), path)
    : parseQuotas(bundledQuotas, 'infra/quotas.json');
}

/** The environment parsed by its schema; a `ConfigError` naming each bad variable (its first issue) otherwise. */
function parseEnv(env: Record<string, string | undefined>): z.output<typeof envSchema> {
  const parsed = envSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const issue of parsed.error.issues) {
    const name = String(issue.path[0]);
    if (seen.has(name)) continue;
    seen.add(name);
    const fix = HOW_TO_FIX[name];
    problems.push(`${name}: ${issue.message}${fix ? ` (${fix})` : ''}`);
  }
  throw new ConfigError(problems);
}

/** The quotas file (QUOTAS_FILE, else the bundled one) with ITEMS_PER_TASK over its `itemsPerTask`. */
function quotasOf(e: Pick<z.output<typeof envSchema>, 'QUOTAS_FILE' | 'ITEMS_PER_TASK'>): Quotas {
  try {
    const quotas = readQuotas(e.QUOTAS_FILE);
    return e.ITEMS_PER_TASK !== undefined ? { ...quotas, itemsPerTask: e.ITEMS_PER_TASK } : quotas;
  } catch (err) {
    throw new ConfigError([`QUOTAS_FILE: ${(err as Error).message}`]);
  }
}

/**
 * Validates the environment once, at cold start. Local runs need nothing set: without
 * `GEMINI_API_KEY` the functions talk to the local stand-in at `GEMINI_BASE_URL`.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const e = parseEnv(env);
  const local = Boolean(e.FIRESTORE_EMULATOR_HOST || e.STORAGE_EMULATOR_HOST || e.CLOUD_TASKS_EMULATOR_HOST);
  // GEMINI_API_KEY is checked where Gemini is called (requireGeminiKey): only the worker and the
  // tick are given the secret, so ingest and intake can neither read nor leak it.
  const problems: string[] = [];
  if (!local && !e.WORKER_URL) problems.push(`WORKER_URL: missing (${HOW_TO_FIX.WORKER_URL})`);
  if (!local && !e.FANOUT_BUCKET) problems.push(`FANOUT_BUCKET: missing (${HOW_TO_FIX.FANOUT_BUCKET})`);
  if (problems.length > 0) throw new ConfigError(problems);

  const quotas = quotasOf(e);
  const bucket = e.FANOUT_BUCKET ?? `${e.GOOGLE_CLOUD_PROJECT}-fanout`;
  const media = mediaFrom(e, bucket);
  const mediaProblems = mediaAccessProblems(bucket, media);
  if (mediaProblems.length > 0) throw new ConfigError(mediaProblems);

  const dispatchDeadlineSeconds = dispatchDeadlineFor(
    Math.max(e.GEMINI_TIMEOUT_MS, e.GEMINI_FLEX_TIMEOUT_MS),
  );
  return {
    projectId: e.GOOGLE_CLOUD_PROJECT,
    dispatchDeadlineSeconds,
    leaseMs: dispatchDeadlineSeconds * 1000 + 30_000,
    reconcileAfterMs: e.RECONCILE_AFTER_MS,
    batchPendingDeadlineMs: e.BATCH_PENDING_DEADLINE_MS,
    batchStepMaxFailures: e.BATCH_STEP_MAX_FAILURES,
    batchStepMaxMs: e.BATCH_STEP_MAX_MS,
    region: e.REGION,
    bucket,
    gemini: {
      ...(e.GEMINI_API_KEY || e.GEMINI_BASE_URL ? { apiKey: e.GEMINI_API_KEY ?? 'local-stand-in' } : {}),
      baseUrl: e.GEMINI_BASE_URL,
      // The local stand-in: no key, and a base URL to reach it by.
      local: !e.GEMINI_API_KEY && Boolean(e.GEMINI_BASE_URL),
      timeoutMs: e.GEMINI_TIMEOUT_MS,
      flexTimeoutMs: e.GEMINI_FLEX_TIMEOUT_MS,
      ...vertexFrom(e),
    },
    emulators: {
      firestore: e.FIRESTORE_EMULATOR_HOST,
      storage: e.STORAGE_EMULATOR_HOST,
      tasks: e.CLOUD_TASKS_EMULATOR_HOST,
    },
    local,
    workerUrl: e.WORKER_URL,
    tasksServiceAccount: e.TASKS_SERVICE_ACCOUNT,
    admins: e.FANOUT_ADMINS,
    mediaGcsAllowed: media.roots,
    mediaGcsShared: media.shared,
    ...bucketFrom(e),
    retentionMs: e.RETENTION_DAYS * 86_400_000,
    responseCacheTtlMs: Math.round(e.RESPONSE_CACHE_TTL_HOURS * 3_600_000),
    ...(e.CALLBACK_SECRET || local
      ? { callbackSecret: e.CALLBACK_SECRET ?? 'local-callback-secret-for-the-local-cloud-only' }
      : {}),
    callbackRetryMs: e.CALLBACK_RETRY_MS,
    identity: identityFrom(e, local),
    ...(e.TICK_URL ? { tickUrl: e.TICK_URL } : {}),
    ...(e.SCHEDULER_SERVICE_ACCOUNT ? { schedulerServiceAccount: e.SCHEDULER_SERVICE_ACCOUNT } : {}),
    ...(e.GEMINI_WEBHOOK_SECRET ? { geminiWebhookSecret: e.GEMINI_WEBHOOK_SECRET } : {}),
    ...pageTokenKey(e.PAGE_TOKEN_SECRET, e.CALLBACK_SECRET, local),
    streamsPerCaller: e.FANOUT_STREAMS_PER_CALLER,
    quotas: quotasFor(quotas, e.GOOGLE_GENAI_USE_VERTEXAI),
    logLevel: e.LOG_LEVEL,
  };
}

/**
 * The Gemini API key, for the functions that call Gemini (worker and tick: their entry points check
 * it before their first request is served, and the clients that use it are built on first use).
 * Throws a `ConfigError` naming GEMINI_API_KEY when this function was given none. On Vertex AI
 * (`config.gemini.vertex`) calls authenticate with Application Default Credentials: '' (no key).
 */
export function requireGeminiKey(config: Pick<Config, 'gemini'>): string {
  if (config.gemini.apiKey) return config.gemini.apiKey;
  // Vertex AI authenticates with Application Default Credentials: no key to require.
  if (config.gemini.vertex) return '';
  throw new ConfigError([
    `GEMINI_API_KEY: missing (${HOW_TO_FIX.GEMINI_API_KEY}); or set GEMINI_BASE_URL to the local stand-in`,
  ]);
}

/** Dispatch deadline (seconds) for a worker that waits up to `geminiTimeoutMs` for Gemini. */
export function dispatchDeadlineFor(geminiTimeoutMs: number): number {
  return Math.min(1800, Math.max(15, Math.ceil(geminiTimeoutMs / 1000) + 30));
}
