import { createHash, randomUUID } from 'node:crypto';
import { type CreatedJob, linksFor, type OwnerView, type ResultEntry } from '../api/jobs.js';
import { counterShardsFor, type JobRecord, type JobSpec, type JobView } from '../core/jobs.js';
import { mediaLocationsFor, ownerPrefix } from '../core/owner-prefix.js';
import type { Quotas } from '../core/quotas.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { Caller } from '../platform/caller.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import type { ObjectStore } from '../platform/object-store.js';
import type { PageTokens } from './page-tokens.js';
import { pipelineJobParts } from './pipeline-job.js';
import { stageBatchJob, stageFirstStep } from './stage-batch.js';
import { validateJob } from './validate-job.js';

export interface IngestDeps {
  lifecycle: Lifecycle;
  /** The bucket, where a batch job's set is staged. */
  objects: Pick<ObjectStore, 'writeStream'>;
  quotas: Quotas;
  logger: Logger;
  /**
   * The media roots (see MEDIA_GCS_ALLOWED): a caller's `gs://` media must lie in its own folder
   * of one (or under `mediaGcsShared`); unchecked when absent.
   */
  mediaGcsAllowed?: readonly string[];
  /** Read-only media prefixes every caller may use (see MEDIA_GCS_SHARED). */
  mediaGcsShared?: readonly string[];
  /**
   * The local cloud, where receivers are on loopback: callbacks may be http and loopback; https to
   * public addresses otherwise.
   */
  httpCallbacks?: boolean;
  /** How often the event stream looks for newly finished items. */
  pollIntervalMs?: number;
  /** Seals and opens `pageToken`s, bound to the caller and the listing (./page-tokens.ts). */
  pageTokens: PageTokens;
}

export type { CreatedJob, ResultEntry };
export { linksFor };

/** How a client made its request idempotent: the `Idempotency-Key` header, and who sent it. */
export interface Idempotency {
  key: string;
  /** The verified caller, when known: keys are per caller. */
  caller?: string;
}

/**
 * `POST /jobs`: validates, stores the job and its items durably, and hands enqueuing to a control task
 * (resumable, so a 10,000-item job is answered as soon as it is stored). Once the job is stored the
 * answer is "created", whatever happens to that task: the reconciler starts a job whose enqueuing
 * never began. With an idempotency key, the same key and body give the same job (`replayed`), the
 * same key with another body is a conflict.
 */
export async function createJob(
  body: unknown,
  deps: IngestDeps,
  options: { source?: string; idempotency?: Idempotency; owner?: string } = {},
): Promise<{ created: CreatedJob; replayed: boolean }> {
  const { normalized, mode, deadlineMs, priority, pipeline } = validateJob(
    body,
    deps,
    Date.now(),
    options.owner,
  );
  const idempotency = options.idempotency ? idempotencyRecord(options.idempotency, body) : undefined;
  const id = randomUUID();
  // A batch pipeline stages its unit jobs, not its inputs (./stage-batch.ts).
  const staged =
    mode === 'batch' && !pipeline
      ? await stageBatchJob(id, normalized.model, normalized.items, deps)
      : undefined;
  const batchItems = staged?.batchItems ?? 0;
  const paths = { realtime: normalized.items.length - batchItems, batch: batchItems };
  const plain: JobSpec = {
    id,
    model: normalized.model,
    mode,
    total: normalized.items.length,
    source: options.source ?? 'api',
    ...(options.owner ? { owner: options.owner } : {}),
    counterShards: counterShardsFor(deps.quotas.models[normalized.model]!.rpm),
    paths,
    ...(normalized.callbackUrl ? { callbackUrl: normalized.callbackUrl } : {}),
    ...(deadlineMs !== undefined ? { deadlineMs } : {}),
    ...(priority ? { priority } : {}),
    ...(normalized.maxCostUsd !== undefined ? { maxCostUsd: normalized.maxCostUsd } : {}),
    ...(normalized.cache === false ? { cache: false as const } : {}),
    ...(staged ? { staged: { object: staged.object } } : {}),
    ...(mode === 'batch' ? { onBatchFailure: normalized.onBatchFailure ?? 'realtime' } : {}),
  };
  // A pipeline job is stored with its unit jobs (./pipeline-job.ts).
  const parts = pipeline ? pipelineJobParts(plain, pipeline, normalized.items, deps.quotas) : undefined;
  if (parts && mode === 'batch') parts.unitJobs = await stageFirstStep(parts.unitJobs, deps);
  const stored = await deps.lifecycle.create(
    parts?.spec ?? plain,
    normalized.items,
    idempotency,
    staged ? { runs: staged.parts } : parts ? { unitJobs: parts.unitJobs } : {},
  );
  if (stored.replayed) {
    if (stored.bodyHash !== idempotency?.bodyHash) {
      throw new ConflictError(
        'This Idempotency-Key was used with another body; use a new key for a new job.',
        [{ field: 'Idempotency-Key', message: 'already used with another body' }],
      );
    }
    const job = await deps.lifecycle.getJob(stored.jobId);
    if (!job) throw new NotFoundError(`Job ${stored.jobId} not found.`);
    deps.logger.info({ event: 'job.replayed', jobId: job.id }, 'same Idempotency-Key and body: same job');
    return {
      created: { id: job.id, status: job.status, mode: job.mode, total: job.total, links: linksFor(job.id) },
      replayed: true,
    };
  }
  if (parts) await deps.lifecycle.pipeline.startUnitJobs(id, parts.unitJobs, deps.lifecycle.startEnqueue);
  else if (paths.realtime > 0) await deps.lifecycle.startEnqueue(id);
  deps.logger.info(
    { event: 'job.created', jobId: id, model: normalized.model, total: normalized.items.length, mode },
    'job created',
  );
  return {
    created: { id, status: 'queued', mode, total: normalized.items.length, links: linksFor(id) },
    replayed: false,
  };
}

/** Keys are stored hashed, per caller; the body is compared by its hash. */
export function idempotencyRecord(idem: Idempotency, body: unknown): { keyId: string; bodyHash: string } {
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  return { keyId: sha(`${idem.caller ?? ''}\n${idem.key}`), bodyHash: sha(JSON.stringify(body)) };
}

/**
 * The caller's job, or 404: another caller's job answers exactly like a job that does not exist, so
 * ids cannot be probed. Admins see every job; bucket jobs (no owner) only they see.
 */
export async function ownedJob(jobId: string, caller: Caller, deps: IngestDeps): Promise<JobRecord> {
  const job = await deps.lifecycle.getJob(jobId);
  if (!job || (!caller.admin && job.owner !== caller.id)) throw new NotFoundError(`Job ${jobId} not found.`);
  return job;
}

/** The job view with the model's quota, which clients draw the request rate against. */
export function withQuota(view: JobView, deps: IngestDeps): JobView {
  const quota = Object.hasOwn(deps.quotas.models, view.model) ? deps.quotas.models[view.model] : undefined;
  return { ...view, quota: quota ? { rpm: quota.rpm, tpm: quota.tpm } : null };
}

export async function getJob(jobId: string, caller: Caller, deps: IngestDeps): Promise<JobView> {
  await ownedJob(jobId, caller, deps);
  const view = await deps.lifecycle.view(jobId);
  if (!view) throw new NotFoundError(`Job ${jobId} not found.`);
  return withQuota(view, deps);
}

/**
 * `GET /jobs`: the caller's jobs, newest first (`?all=true`: every job, for admins), paged by
 * `pageSize` (1–100, default 20) and `pageToken`.
 */
export async function listJobs(
  caller: Caller,
  query: { pageToken?: string; pageSize?: string; all?: string },
  deps: IngestDeps,
): Promise<{ jobs: JobView[]; nextPageToken?: string; owner: OwnerView }> {
  const pageSize = query.pageSize === undefined ? 20 : Number(query.pageSize);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) {
    throw new ValidationError('pageSize must be a whole number from 1 to 100.', [
      { field: 'pageSize', message: 'out of range' },
    ]);
  }
  if (query.all === 'true' && !caller.admin) throw new ForbiddenError('Only admins may list every job.');
  const binding = { caller: caller.id, scope: query.all === 'true' ? 'jobs:all' : 'jobs' };
  const after = query.pageToken === undefined ? undefined : deps.pageTokens.open(query.pageToken, binding);
  if (after !== undefined && !/^[A-Za-z0-9-]{1,64}$/.test(after))
    throw new ValidationError('pageToken is not valid.', [{ field: 'pageToken', message: 'invalid' }]);
  const page = await deps.lifecycle.listJobs({
    ...(query.all === 'true' ? {} : { owner: caller.id }),
    limit: pageSize,
    ...(after ? { after } : {}),
  });
  return {
    jobs: page.jobs.map((v) => withQuota(v, deps)),
    ...(page.next ? { nextPageToken: deps.pageTokens.seal(page.next, binding) } : {}),
    owner: ownerView(caller.id, deps),
  };
}

/**
 * The caller as an owner of objects (`GET /jobs`'s `owner`): its prefix and the `gs://` locations
 * its media may come from (its own folders first, then the shared ones).
 */
function ownerView(id: string, deps: IngestDeps): OwnerView {
  return {
    id,
    prefix: ownerPrefix(id),
    mediaLocations: mediaLocationsFor(
      { roots: deps.mediaGcsAllowed ?? [], shared: deps.mediaGcsShared ?? [] },
      id,
    ),
  };
}

/**
 * `POST /jobs/{id}/cancel`: pending items end as cancelled and no further Gemini calls are made.
 * A cancel that stops halfway is finished by the reconciler.
 */
export async function cancelJob(jobId: string, caller: Caller, deps: IngestDeps): Promise<JobView> {
  await ownedJob(jobId, caller, deps);
  const result = await deps.lifecycle.cancel(jobId);
  if (!result) throw new NotFoundError(`Job ${jobId} not found.`);
  return withQuota(result.view, deps);
}
