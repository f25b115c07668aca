import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Storage } from '@google-cloud/storage';
import { loadConfig, readQuotas } from '../../functions/platform/config.js';
import { createTaskQueue } from '../../functions/platform/task-queue.js';
import { type CloudTasksEmulator, startCloudTasksEmulator } from './cloud-tasks/server.js';
import { startFirestoreEmulator } from './firestore.js';
import { standInCostSettings } from './gemini/quota-costs.js';
import { type GeminiStandIn, type GeminiStandInOptions, startGeminiStandIn } from './gemini/server.js';
import { type IdIssuer, startIdIssuer } from './id-issuer.js';
import { LOCAL_DEVELOPER } from './identity.js';
import { numberFlag, profileFlag, type Running, runMain } from './main-runner.js';
import { freePort } from './ports.js';
import { SAMPLE_PREFIX, sampleMedia, sampleMediaPrefixes, uploadSampleMedia } from './sample-media.js';
import { type StorageEmulator, startStorageEmulator } from './storage/server.js';
import { LOCAL_STS_AUDIENCE, writeVertexAdc } from './vertex-adc.js';
import { workerCapacityFromEnv, workerSlots } from './worker-slots.js';

/** What `npm run dev` prints after `ready:` and writes to `.local/stack.json` (DESIGN's contract). */
export interface StackInfo {
  projectId: string;
  ingestUrl: string;
  bucket: string;
  storageEmulatorHost: string;
  firestoreEmulatorHost: string;
  tasksEmulatorHost: string;
  geminiBaseUrl: string;
  /** Not in the contract, but handy: the other function URLs. */
  workerUrl: string;
  tickUrl: string;
  /** The intake function (the Eventarc stand-in posts finalize events there). */
  intakeUrl: string;
  /**
   * The local cloud's identity provider (id-issuer.ts): `GET {idIssuerUrl}/token?email=E&audience=A`
   * with `Metadata-Flavor: Google` signs an ID token for anyone (identity.ts `localIdToken`).
   */
  idIssuerUrl: string;
  /** The account the local Cloud Scheduler signs tick's token as (tick accepts only it). */
  schedulerServiceAccount: string;
  /**
   * Not in the contract either: the pid of the functions host (infra/local/functions-host.ts).
   * `process.kill(functionsPid, 'SIGUSR2')` kills one function instance; the host starts another.
   */
  functionsPid: number;
}

export interface StackOptions {
  projectId?: string;
  /** First of a range of ports (ingest, worker, tick, intake, storage, tasks, gemini, firestore); 0 picks free ports. */
  portBase?: number;
  /** A quotas file of the schema of infra/quotas.json; it sizes the queues and the stand-in's limits. */
  quotasFile?: string;
  /** Use a real Gemini (or another endpoint) instead of the stand-in. */
  gemini?: { baseUrl?: string; apiKey?: string };
  /** Configuration of the stand-in beyond the quotas (latency, faults, batch timings). */
  standIn?: GeminiStandInOptions;
  /** Share of tasks the Cloud Tasks emulator delivers twice. */
  duplicateShare?: number;
  /** How often the local Cloud Scheduler calls the tick function; 0 disables it. */
  schedulerIntervalMs?: number;
  /** Reuse a running Firestore emulator (HOST:PORT). */
  firestoreHost?: string;
  logLevel?: string;
  /** Milliseconds the worker waits for Gemini. */
  geminiTimeoutMs?: number;
  /** Milliseconds the worker waits for a Flex answer (GEMINI_FLEX_TIMEOUT_MS); `geminiTimeoutMs` by default. */
  geminiFlexTimeoutMs?: number;
  /** How long enqueuing or a half-done cancel may stand still before the reconciler acts (RECONCILE_AFTER_MS). */
  reconcileAfterMs?: number;
  /** How long a Gemini batch may stay PENDING before its items go realtime (BATCH_PENDING_DEADLINE_MS). */
  batchPendingDeadlineMs?: number;
  /**
   * How unkind the emulators are: `strict` (the default) gives each the upstream behaviours a real
   * service has and a happy-path emulator leaves out (Cloud Tasks: derived burst, ramp-up, throttling,
   * jitter, 500/50/5; Storage: 256 KiB resumable units, at-least-once events with duplicates, delay and
   * reordering); `ideal` leaves them out, for conformance tests of the basics.
   */
  profile?: 'ideal' | 'strict';
  /** Speeds up the Eventarc stand-in's delays and retry backoffs (1 = real time). */
  eventTimeScale?: number;
  /** Identities whose files under `inbox/{owner prefix}/` are their jobs (FANOUT_BUCKET_OWNERS). */
  bucketOwners?: string[];
  /** Caps on a bucket file (BUCKET_MAX_LINES, BUCKET_MAX_BYTES); the defaults otherwise. */
  bucketCaps?: { maxLines: number; maxBytes: number };
  /**
   * Whether the stand-in pushes batch webhooks to tick's `POST /gemini-webhook` (true by default),
   * signed with a secret made for this stack (GEMINI_WEBHOOK_SECRET); polling runs all the same.
   */
  batchWebhooks?: boolean;
  /** Hours answers are served from the response cache (RESPONSE_CACHE_TTL_HOURS; 0: off); 24 by default. */
  responseCacheTtlHours?: number;
  /** Items one task carries at most (ITEMS_PER_TASK); the quotas file's (1) by default. */
  itemsPerTask?: number;
  /**
   * Requests one worker instance serves at once (FANOUT_WORKER_CONCURRENCY, `worker-slots.ts`; 200
   * by default): with the instances, the slots every model queue's concurrent dispatches share.
   */
  workerConcurrency?: number;
  /**
   * Run the functions on Vertex AI (GOOGLE_GENAI_USE_VERTEXAI): the stand-in in its Vertex mode,
   * and Application Default Credentials from an external_account file whose token exchange is the
   * stand-in's (vertex-adc.ts). `location` is GOOGLE_CLOUD_LOCATION (us-central1 by default).
   */
  vertex?: { location?: string };
}

export interface Stack {
  info: StackInfo;
  /** The identity provider, for signing tokens in this process. */
  issuer: IdIssuer;
  standIn?: GeminiStandIn;
  tasks: CloudTasksEmulator;
  storage: StorageEmulator;
  /** The sample set's media (./sample-media.ts): where they are, and how many this start uploaded. */
  samples: { prefixes: string[]; uploaded: number; kept: number };
  /** The batch webhook the stand-in pushes to, and its signing secret (absent when off). */
  webhook?: { url: string; secret: string };
  /**
   * Vertex mode: the SDK's variables and the offline ADC file the functions run with, for a client
   * in this process (doctor) to call the stand-in as they do. Absent otherwise.
   */
  vertexEnv?: Record<string, string>;
  /** Kills one function instance with SIGKILL, as a crash would; the host starts another. */
  killFunctionInstance(): void;
  close(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));
export const PROJECT_ROOT = resolve(here, '..', '..');
const DEFAULT_PORT_BASE = 8580;

/**
 * Boots the local cloud: Firestore (the real emulator), the Cloud Tasks and Cloud Storage emulators,
 * the Gemini stand-in, and every registered function served by the Functions Framework; creates
 * the bucket and one queue per model; puts the sample set's images where `examples/prompts.jsonl`
 * points and lets the functions read them; calls the tick function on an interval like Cloud Scheduler.
 *
 * It sets the standard emulator variables in this process's environment: the functions run here,
 * and the official clients find the emulators through them.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const projectId = options.projectId ?? 'fanout-local';
  const base = options.portBase ?? DEFAULT_PORT_BASE;
  const port = async (offset: number) => (base === 0 ? freePort() : base + offset);
  const quotasFile = options.quotasFile ?? resolve(PROJECT_ROOT, 'infra', 'quotas.json');
  const cleanups: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };

  try {
    const quotas = readQuotas(quotasFile);
    const samples = sampleMedia();

    const firestore = options.firestoreHost
      ? undefined
      : await startFirestoreEmulator({ port: await port(7) });
    const firestoreHost = options.firestoreHost ?? firestore!.host;
    if (firestore) cleanups.push(() => firestore!.stop());

    const ingestPort = await port(0);
    const workerPort = await port(1);
    const tickPort = await port(2);
    const intakePort = await port(3);
    const workerUrl = `http://127.0.0.1:${workerPort}/`;
    const tickUrl = `http://127.0.0.1:${tickPort}/`;
    const bucket = `${projectId}-fanout`;
    const schedulerAccount = `fanout-scheduler@${projectId}.iam.gserviceaccount.com`;
    const issuer = await startIdIssuer();
    cleanups.push(() => issuer.close());

    const profile = options.profile ?? 'strict';
    const storage = await startStorageEmulator({
      port: await port(4),
      projectId,
      profile,
      ...(options.eventTimeScale ? { events: { timeScale: options.eventTimeScale } } : {}),
    });
    cleanups.push(() => storage.close());
    const tasks = await startCloudTasksEmulator({
      profile,
      port: await port(5),
      duplicateShare: options.duplicateShare ?? 0,
    });
    cleanups.push(() => tasks.close());

    // As registering a static webhook with Gemini: tick's route, and the secret the registration returns.
    const webhook =
      options.batchWebhooks === false || options.gemini?.baseUrl || options.gemini?.apiKey
        ? undefined
        : { url: `${tickUrl}gemini-webhook`, secret: `whsec_${randomBytes(32).toString('base64')}` };
    let standIn: GeminiStandIn | undefined;
    let geminiBaseUrl = options.gemini?.baseUrl;
    // Vertex AI mode: the functions' ADC is a token the local issuer signs, exchanged at the stand-in.
    const subjectToken = options.vertex
      ? issuer.idToken(`fanout-functions@${projectId}.iam.gserviceaccount.com`, LOCAL_STS_AUDIENCE)
      : undefined;
    if (!geminiBaseUrl && !options.gemini?.apiKey) {
      // The stand-in enforces what the product plans with: each model's enqueued batch-token cap too.
      const enqueuedTokenLimit = Object.fromEntries(
        Object.entries(quotas.models).flatMap(([m, q]) =>
          q.batchEnqueuedTokens ? [[m, q.batchEnqueuedTokens]] : [],
        ),
      );
      standIn = await startGeminiStandIn({
        profile,
        ...options.standIn,
        batch: { enqueuedTokenLimit, ...options.standIn?.batch },
        ...(webhook ? { webhooks: { ...webhook, ...options.standIn?.webhooks } } : {}),
        ...standInCostSettings(quotas, options.standIn),
        ...(subjectToken
          ? {
              vertex: {
                project: projectId,
                subjectToken,
                storageUrl: storage.url,
                ...options.standIn?.vertex,
              },
            }
          : {}),
        port: await port(6),
        models: Object.keys(quotas.models),
        quotas: Object.fromEntries(
          Object.entries(quotas.models).map(([m, q]) => [m, { rpm: q.rpm, tpm: q.tpm, rpd: q.rpd }]),
        ),
      });
      cleanups.push(() => standIn!.close());
      geminiBaseUrl = standIn.url;
    }
    const vertexEnv =
      subjectToken && geminiBaseUrl ? localVertexEnv(geminiBaseUrl, subjectToken, options) : {};
    if (vertexEnv.GOOGLE_APPLICATION_CREDENTIALS) {
      const adcDir = dirname(vertexEnv.GOOGLE_APPLICATION_CREDENTIALS);
      cleanups.push(async () => rmSync(adcDir, { recursive: true, force: true }));
    }

    const env: Record<string, string> = {
      GOOGLE_CLOUD_PROJECT: projectId,
      FANOUT_BUCKET: bucket,
      FIRESTORE_EMULATOR_HOST: firestoreHost,
      STORAGE_EMULATOR_HOST: storage.url,
      CLOUD_TASKS_EMULATOR_HOST: tasks.host,
      WORKER_URL: workerUrl,
      TASKS_SERVICE_ACCOUNT: `fanout-tasks@${projectId}.iam.gserviceaccount.com`,
      QUOTAS_FILE: quotasFile,
      METADATA_SERVER_DETECTION: 'none',
      // The local developer (see identity.ts) may read every job, bucket jobs included.
      FANOUT_ADMINS: LOCAL_DEVELOPER,
      // ID tokens: the local issuer's, verified by the code that verifies Google's (id-issuer.ts),
      // for ingest's loopback names; tick takes only the local Cloud Scheduler's.
      FANOUT_ID_ISSUER: issuer.url,
      FANOUT_ID_CERTS_URL: issuer.certsUrl,
      FANOUT_AUDIENCES: `http://127.0.0.1:${ingestPort},http://localhost:${ingestPort}`,
      TICK_URL: tickUrl,
      SCHEDULER_SERVICE_ACCOUNT: schedulerAccount,
      // gs:// media: each owner's folder of the bucket's media/ (the default), and read-only for
      // everyone the shared samples: media/samples/ of this bucket and of the one the sample set
      // names (the bucket of `npm run dev`, whichever project this stack runs as).
      MEDIA_GCS_ALLOWED: `gs://${bucket}/media/`,
      MEDIA_GCS_SHARED: [
        ...new Set([`gs://${bucket}/${SAMPLE_PREFIX}`, ...sampleMediaPrefixes(samples)]),
      ].join(','),
      // The Functions Framework's own error pages (bad JSON) then carry no stack trace.
      NODE_ENV: 'production',
      LOG_LEVEL: options.logLevel ?? 'info',
      ...(geminiBaseUrl ? { GEMINI_BASE_URL: geminiBaseUrl } : {}),
      ...(options.gemini?.apiKey ? { GEMINI_API_KEY: options.gemini.apiKey } : {}),
      ...(webhook ? { GEMINI_WEBHOOK_SECRET: webhook.secret } : {}),
      ...(options.geminiTimeoutMs ? { GEMINI_TIMEOUT_MS: String(options.geminiTimeoutMs) } : {}),
      // Flex calls wait as long as standard ones unless told otherwise: a short local timeout keeps
      // leases (which fit the longer of the two) short.
      ...(options.geminiFlexTimeoutMs || options.geminiTimeoutMs
        ? { GEMINI_FLEX_TIMEOUT_MS: String(options.geminiFlexTimeoutMs ?? options.geminiTimeoutMs) }
        : {}),
      ...(options.reconcileAfterMs ? { RECONCILE_AFTER_MS: String(options.reconcileAfterMs) } : {}),
      ...(options.batchPendingDeadlineMs
        ? { BATCH_PENDING_DEADLINE_MS: String(options.batchPendingDeadlineMs) }
        : {}),
      ...(options.responseCacheTtlHours !== undefined
        ? { RESPONSE_CACHE_TTL_HOURS: String(options.responseCacheTtlHours) }
        : {}),
      ...(options.itemsPerTask ? { ITEMS_PER_TASK: String(options.itemsPerTask) } : {}),
      ...(options.workerConcurrency ? { FANOUT_WORKER_CONCURRENCY: String(options.workerConcurrency) } : {}),
      ...(options.bucketOwners ? { FANOUT_BUCKET_OWNERS: options.bucketOwners.join(',') } : {}),
      ...vertexEnv,
      ...(options.bucketCaps
        ? {
            BUCKET_MAX_LINES: String(options.bucketCaps.maxLines),
            BUCKET_MAX_BYTES: String(options.bucketCaps.maxBytes),
          }
        : {}),
    };
    Object.assign(process.env, env);

    const client = new Storage({ projectId });
    const [exists] = await client.bucket(bucket).exists();
    if (!exists) await client.createBucket(bucket);
    const uploads = await uploadSampleMedia(client, samples);

    const config = loadConfig(process.env);
    // The queues' concurrent dispatches share what the functions host serves at once (worker-slots.ts).
    await createTaskQueue({
      projectId,
      region: config.region,
      workerUrl,
      emulatorHost: tasks.host,
    }).ensureQueues(config.quotas, { workerSlots: workerSlots(workerCapacityFromEnv(process.env)) });

    const host = await startFunctionsHost(
      { ingest: ingestPort, worker: workerPort, tick: tickPort, intake: intakePort },
      { ...process.env, ...env },
    );
    cleanups.push(host.stop);
    const ingestUrl = host.urls.ingest!.replace(/\/$/, '');
    if (host.urls.intake) {
      storage.subscribe({
        url: host.urls.intake,
        bucket,
        eventTypes: ['google.cloud.storage.object.v1.finalized'],
      });
    }

    const interval = options.schedulerIntervalMs ?? 10_000;
    if (interval > 0) {
      // As Cloud Scheduler: a POST of `{}` with an OIDC token for the scheduler account (scheduler.tf).
      const timer = setInterval(() => {
        fetch(tickUrl, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${issuer.idToken(schedulerAccount, tickUrl)}`,
          },
          body: '{}',
        }).then(
          (r) => r.body?.cancel(),
          () => undefined,
        );
      }, interval);
      timer.unref();
      cleanups.push(async () => clearInterval(timer));
    }

    const info: StackInfo = {
      projectId,
      ingestUrl,
      bucket,
      storageEmulatorHost: storage.url,
      firestoreEmulatorHost: firestoreHost,
      tasksEmulatorHost: tasks.host,
      geminiBaseUrl: geminiBaseUrl ?? '',
      workerUrl,
      tickUrl,
      intakeUrl: host.urls.intake ?? '',
      idIssuerUrl: issuer.url,
      schedulerServiceAccount: schedulerAccount,
      functionsPid: host.pid,
    };
    return {
      info,
      issuer,
      ...(standIn ? { standIn } : {}),
      tasks,
      storage,
      samples: { prefixes: sampleMediaPrefixes(samples), ...uploads },
      ...(webhook ? { webhook } : {}),
      ...(vertexEnv.GOOGLE_APPLICATION_CREDENTIALS ? { vertexEnv } : {}),
      killFunctionInstance: () => process.kill(host.pid, 'SIGUSR2'),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The functions' environment on Vertex AI: the SDK's variables and an offline ADC file. */
function localVertexEnv(
  standInUrl: string,
  subjectToken: string,
  options: StackOptions,
): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-vertex-adc-'));
  return {
    GOOGLE_GENAI_USE_VERTEXAI: 'true',
    GOOGLE_CLOUD_LOCATION: options.vertex?.location ?? 'us-central1',
    GOOGLE_APPLICATION_CREDENTIALS: writeVertexAdc(dir, standInUrl, subjectToken),
  };
}

/**
 * Starts infra/local/functions-host.ts in a child process and waits for its `functions:` line; its
 * later output (the functions' JSON logs) goes to this process's stdout, and its stderr (instance
 * restarts among it) to this process's stderr.
 */
export async function startFunctionsHost(
  ports: Record<string, number>,
  env: NodeJS.ProcessEnv,
): Promise<{ urls: Record<string, string>; pid: number; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      ...(env.FANOUT_HOST_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      '--import',
      'tsx',
      resolve(here, 'functions-host.ts'),
      '--ports',
      JSON.stringify(ports),
    ],
    { cwd: PROJECT_ROOT, env, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const lines = createInterface({ input: child.stdout! });
  const urls = await new Promise<Record<string, string>>((ok, fail) => {
    child.once('exit', (code) =>
      fail(new Error(`the functions host exited with ${code} before it was ready`)),
    );
    lines.on('line', (line) => {
      if (line.startsWith('functions: ')) ok(JSON.parse(line.slice('functions: '.length)));
      else process.stdout.write(`${line}\n`);
    });
  });
  return {
    urls,
    pid: child.pid!,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * `npm run dev`: boots the stack, writes `.local/stack.json`, and (through `runMain`) prints
 * `ready: {json}` and stops on Ctrl-C.
 */
async function start(argv: string[]): Promise<Running> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'port-base': { type: 'string' },
      quotas: { type: 'string' },
      profile: { type: 'string' },
      'tick-every-ms': { type: 'string' },
    },
  });
  const started = Date.now();
  const portBase = numberFlag('port-base', values['port-base']);
  const tickEveryMs = numberFlag('tick-every-ms', values['tick-every-ms']);
  const profile = profileFlag(values.profile);
  const stack = await startStack({
    ...(portBase !== undefined ? { portBase } : {}),
    ...(values.quotas ? { quotasFile: resolve(values.quotas) } : {}),
    ...(profile ? { profile } : {}),
    ...(tickEveryMs !== undefined ? { schedulerIntervalMs: tickEveryMs } : {}),
    ...(process.env.GEMINI_API_KEY ? { gemini: { apiKey: process.env.GEMINI_API_KEY } } : {}),
  });
  const dir = resolve(PROJECT_ROOT, '.local');
  mkdirSync(dir, { recursive: true });
  writeFileSync(resolve(dir, 'stack.json'), `${JSON.stringify(stack.info, null, 2)}\n`);
  const { samples } = stack;
  process.stderr.write(
    `sample images under ${samples.prefixes.join(', ')} (${samples.uploaded} uploaded, ${samples.kept} already there)\n`,
  );
  process.stderr.write(`local cloud up in ${Date.now() - started} ms; Ctrl-C stops it\n`);
  return { ready: { ...stack.info }, close: () => stack.close() };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runMain('local cloud', start);
}
