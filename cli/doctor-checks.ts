/**
 * The checks of `gemini-fanout doctor`, each over a narrow interface (the real clients in
 * ./doctor.ts, small fakes in the unit tests). A check never throws: it answers ok, fail or skipped,
 * and a failure always says what to fix. `required: false` checks (warnings) leave the exit code alone.
 */
import type { JobsApiError } from '../functions/api/client.js';
import { MAX_CONCURRENT_DISPATCHES } from '../functions/core/queue-concurrency.js';
import { type QueueRateLimits, queueRateLimits } from '../functions/core/queue-rate.js';
import type { Quotas } from '../functions/core/quotas.js';
import { CONTROL_QUEUE_ID, queueIdForModel } from '../functions/core/quotas.js';
import type { GeminiCallError, GeminiClient } from '../functions/platform/gemini/client.js';
import { CliError, EXIT } from './exit-codes.js';

export type CheckStatus = 'ok' | 'fail' | 'skipped';

export interface CheckResult {
  /** What was checked, one short name (the table's first column). */
  check: string;
  status: CheckStatus;
  /** What was found: the evidence for ok, the symptom for fail, the reason for skipped. */
  detail: string;
  /** For a failure: what to do about it. */
  fix?: string;
  /** A failed required check makes the exit code non-zero; others are warnings. */
  required: boolean;
}

/** A passed check. */
export const ok = (check: string, detail: string, required = true): CheckResult => ({
  check,
  status: 'ok',
  detail,
  required,
});
/** A failed check, with what to fix; `required: false` makes it a warning. */
export const fail = (check: string, detail: string, fix: string, required = true): CheckResult => ({
  check,
  status: 'fail',
  detail,
  fix,
  required,
});
const skipped = (check: string, why: string): CheckResult => ({
  check,
  status: 'skipped',
  detail: why,
  required: false,
});

/** An error's message, for a row. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The Gemini key: the worker's secret, here in the caller's shell; the local stand-in needs none. */
export function checkGeminiKey(s: { apiKey?: string | undefined; standIn: boolean }): CheckResult {
  if (s.apiKey) return ok('Gemini API key', 'GEMINI_API_KEY is set (not printed)');
  if (s.standIn) return ok('Gemini API key', 'the local Gemini stand-in takes any key');
  return fail(
    'Gemini API key',
    'GEMINI_API_KEY is not set',
    'export GEMINI_API_KEY=<the key in the gemini-api-key secret> (gcloud secrets versions access latest --secret=SECRET_ID)',
  );
}

/** Application Default Credentials: needed for Cloud Tasks, Cloud Storage and the ingest token. */
export async function checkAdc(s: {
  emulatorsOnly: boolean;
  projectOf: () => Promise<string>;
}): Promise<CheckResult> {
  const name = 'Google credentials (ADC)';
  if (s.emulatorsOnly) return skipped(name, "the local cloud's emulators take no credentials");
  try {
    return ok(name, `Application Default Credentials found (project ${await s.projectOf()})`);
  } catch (err) {
    return fail(
      name,
      `no Application Default Credentials: ${errorText(err)}`,
      'run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key',
    );
  }
}

/** What to do about a failed Gemini call, by its HTTP status (undefined: no answer at all). */
export function geminiAdvice(err: unknown, baseUrl: string, model: string): string {
  const e = err as Partial<GeminiCallError>;
  const status = e.httpStatus;
  const body = JSON.stringify(e.body ?? '');
  if (status === undefined)
    return `nothing answered at ${baseUrl}: fix GEMINI_BASE_URL (unset it for Google's endpoint) or the network`;
  if (status === 400 && /API_KEY_INVALID|API key not valid/i.test(body))
    return 'the key is not valid: create one in Google AI Studio and put it in GEMINI_API_KEY (and the secret)';
  if (status === 401 || status === 403)
    return "the key was refused: enable the Generative Language API in the key's project, or lift the key's API restrictions";
  if (status === 404)
    return `model ${model} is unknown to this endpoint: fix defaultModel in the quotas file`;
  if (status === 429)
    return "the key's quota is spent (or its tier is lower than the quotas file says): wait, or raise the tier";
  return `Gemini answered ${status}: try again; if it stays, check the Gemini status page`;
}

/** The key reaches Gemini: `countTokens`, then one tiny `generateContent`. */
export async function checkGemini(s: {
  gemini: GeminiClient;
  model: string;
  baseUrl: string;
  /** What to fix for a failed call; the Developer API's advice by default. */
  advice?: (err: unknown) => string;
}): Promise<CheckResult> {
  const name = 'Gemini reachable';
  const advice = s.advice ?? ((err: unknown) => geminiAdvice(err, s.baseUrl, s.model));
  const request = { contents: [{ role: 'user', parts: [{ text: 'Reply with the single word OK.' }] }] };
  let tokens: number;
  try {
    tokens = await s.gemini.countTokens(s.model, request);
  } catch (err) {
    return fail(name, `countTokens on ${s.model}: ${errorText(err)}`, advice(err));
  }
  try {
    const { usageMetadata } = await s.gemini.generate(s.model, request);
    const out = usageMetadata?.candidatesTokenCount ?? 0;
    return ok(
      name,
      `${s.model} at ${s.baseUrl}: countTokens ${tokens}, generateContent answered (${out} tokens out)`,
    );
  } catch (err) {
    return fail(name, `generateContent on ${s.model}: ${errorText(err)}`, advice(err));
  }
}

/** A queue as Cloud Tasks answers `getQueue`; undefined when it does not exist. */
export type QueueReader = (queueId: string) => Promise<Partial<QueueRateLimits> | undefined>;

/** Terraform floors the rate on an exact quotient, JavaScript on a double: 0.001 apart at most. */
const RATE_TOLERANCE = 0.0011;

/** Every model's queue and the control queue, against what `queueRateLimits` computes from the quotas. */
export async function checkQueues(s: {
  getQueue: QueueReader;
  quotas: Quotas;
  quotasFrom: string;
}): Promise<CheckResult> {
  const name = 'queues vs quotas';
  const wanted: Array<[string, QueueRateLimits]> = [
    ...Object.entries(s.quotas.models).map(
      ([model, q]) =>
        [queueIdForModel(model), queueRateLimits(q, s.quotas.headroom, s.quotas.itemsPerTask)] as [
          string,
          QueueRateLimits,
        ],
    ),
    [CONTROL_QUEUE_ID, { maxDispatchesPerSecond: 100, maxBurstSize: 100, maxConcurrentDispatches: 100 }],
  ];
  const problems: string[] = [];
  try {
    for (const [id, want] of wanted) {
      const have = await s.getQueue(id);
      if (!have) {
        problems.push(`${id} is missing`);
        continue;
      }
      const rate = have.maxDispatchesPerSecond ?? 0;
      if (Math.abs(rate - want.maxDispatchesPerSecond) > RATE_TOLERANCE)
        problems.push(`${id} dispatches ${rate}/s, ${s.quotasFrom} plans ${want.maxDispatchesPerSecond}/s`);
      // Concurrency shares the worker's max instances × concurrency (core/queue-concurrency.ts),
      // which the quotas file does not hold: only Cloud Tasks' bounds are checked.
      const concurrent = have.maxConcurrentDispatches ?? 0;
      if (concurrent < 1 || concurrent > MAX_CONCURRENT_DISPATCHES)
        problems.push(
          `${id} allows ${concurrent} concurrent dispatches, not 1 to ${MAX_CONCURRENT_DISPATCHES}`,
        );
    }
  } catch (err) {
    return fail(name, `getQueue: ${errorText(err)}`, queueAccessAdvice(err));
  }
  if (problems.length)
    return fail(
      name,
      problems.join('; '),
      `apply Terraform again (infra/terraform/queues.tf sizes the queues from ${s.quotasFrom}), or make the quotas file match your project`,
    );
  return ok(
    name,
    `${wanted.length} queues match ${s.quotasFrom} (rates; concurrency within Cloud Tasks' bounds; the service sets each burst)`,
  );
}

function queueAccessAdvice(err: unknown): string {
  const code = (err as { code?: number }).code;
  if (code === 7 || code === 16)
    return 'your credentials may not read the queues: grant roles/cloudtasks.viewer, or log in as a project member';
  return 'check GOOGLE_CLOUD_PROJECT and REGION (where the queues live), and that the Cloud Tasks API is enabled';
}

export interface BucketReader {
  exists(): Promise<boolean>;
  /** The bucket's notification configs' event types; undefined when this storage has none to list. */
  notificationEventTypes(): Promise<string[][] | undefined>;
}

/** The bucket exists, and a finalize notification feeds intake (Eventarc's Cloud Storage trigger). */
export async function checkBucket(s: {
  bucket?: string | undefined;
  reader?: BucketReader;
}): Promise<CheckResult[]> {
  if (!s.bucket || !s.reader)
    return [fail('bucket', 'FANOUT_BUCKET is not set', 'export FANOUT_BUCKET=<the bucket Terraform made>')];
  let exists: boolean;
  try {
    exists = await s.reader.exists();
  } catch (err) {
    return [
      fail(
        'bucket',
        `gs://${s.bucket}: ${errorText(err)}`,
        'grant your account roles/storage.objectViewer on it, or check FANOUT_BUCKET',
      ),
    ];
  }
  if (!exists)
    return [
      fail(
        'bucket',
        `gs://${s.bucket} does not exist`,
        'fix FANOUT_BUCKET, or apply Terraform (it makes the bucket)',
      ),
    ];
  return [ok('bucket', `gs://${s.bucket} exists`), await checkNotification(s.bucket, s.reader)];
}

async function checkNotification(bucket: string, reader: BucketReader): Promise<CheckResult> {
  const name = 'bucket notification';
  let configs: string[][] | undefined;
  try {
    configs = await reader.notificationEventTypes();
  } catch (err) {
    return fail(name, errorText(err), 'grant your account storage.buckets.get on the bucket', false);
  }
  if (configs === undefined)
    return skipped(
      name,
      'the local storage emulator keeps no notification configs (its Eventarc stand-in calls intake)',
    );
  // A config without event types sends every event, finalize included.
  const finalize = configs.filter((types) => types.length === 0 || types.includes('OBJECT_FINALIZE'));
  if (finalize.length)
    return ok(name, `${finalize.length} notification config(s) send OBJECT_FINALIZE`, false);
  return fail(
    name,
    `gs://${bucket} sends no OBJECT_FINALIZE notification: files dropped in inbox/ start no job`,
    "apply Terraform again (intake's Eventarc trigger makes it); the Cloud Storage service agent needs roles/pubsub.publisher",
    false,
  );
}

/** The jobs API answers `GET /jobs` for the caller. */
export async function checkIngest(s: { url: string; list: () => Promise<unknown> }): Promise<CheckResult> {
  const name = 'ingest URL';
  try {
    await s.list();
    return ok(name, `GET ${s.url}/jobs answered`);
  } catch (err) {
    const status = (err as Partial<JobsApiError>).status;
    // No identity token at all (target.ts throws it as a CliError with the auth exit code) reads as a 401.
    const auth = status === 401 || status === 403 || (err instanceof CliError && err.exitCode === EXIT.auth);
    const fix = auth
      ? 'grant your account roles/run.invoker on the ingest service, and log in: gcloud auth application-default login'
      : status === undefined
        ? 'check --url / FANOUT_URL (terraform output ingest_url), or start the local cloud with `npm run dev`'
        : 'read the ingest function’s logs: it answered outside the jobs API contract';
    return fail(name, `GET ${s.url}/jobs: ${errorText(err)}`, fix);
  }
}

/** Not reachable with the clients this project has; said so, with where to look. */
export function checkServiceAccounts(local: boolean): CheckResult {
  return skipped(
    "functions' service accounts",
    local
      ? 'the local cloud runs every function as one process, with no service accounts'
      : 'no Cloud Functions/Run admin client among the dependencies: `gcloud functions describe NAME --gen2 --region REGION --format="value(serviceConfig.serviceAccountEmail)"`',
  );
}
