import { randomUUID } from 'node:crypto';
import { linksFor, retryJobSchema } from '../api/jobs.js';
import {
  counterShardsFor,
  type ItemRecord,
  isTerminalJob,
  type JobMode,
  type JobRecord,
  type NewItem,
} from '../core/jobs.js';
import { LIMITS } from '../core/requests.js';
import { changedItems, needsRerun, type OriginalRequest, requestHash, rerunItems } from '../core/rerun.js';
import type { Caller } from '../platform/caller.js';
import { ConflictError, ValidationError } from '../platform/errors.js';
import {
  type CreatedJob,
  type Idempotency,
  type IngestDeps,
  idempotencyRecord,
  ownedJob,
} from './handler.js';
import { validateJob } from './validate-job.js';

/*
 * `POST /jobs/{id}/retry`: a finished job's failed and cancelled items as a new job linked to it
 * (`retryOf` on the new one, `retries` on the old), so a re-run costs only what is missing. With a
 * new prompt set in the body (`requests` or `prompts`, with the job's `systemInstruction` and
 * `config` if it had them), only its lines whose request changed against the original's items are
 * run (core/rerun.ts says how they are compared and numbered).
 */

/** The fields a retry's body may have: a new prompt set and the defaults its requests are built with. */
const BODY_FIELDS = new Set(Object.keys(retryJobSchema.shape));

/** Items read per page while choosing what to re-run. */
const READ_PAGE = 500;

/**
 * Creates the re-run of `jobId` for its owner (another caller's job is 404). 409 while the job is
 * still running, and when there is nothing to re-run. With an idempotency key, the same key and body
 * give the same new job (`replayed`), as for `POST /jobs`.
 */
export async function retryJob(
  jobId: string,
  body: unknown,
  caller: Caller,
  deps: IngestDeps,
  idempotency?: Idempotency,
): Promise<{ created: CreatedJob; replayed: boolean }> {
  const original = await ownedJob(jobId, caller, deps);
  refuseUnfinished(original);
  if (original.pipeline || original.unitOf) {
    // A re-run would send the inputs through one model, not through the steps.
    throw new ValidationError(
      'A job with steps cannot be retried yet; submit its failed inputs with the same steps.',
      [{ field: 'steps', message: 'no retry of a pipeline job' }],
    );
  }
  const next = newPromptSet(body, original, deps, caller.id);
  const chosen = next ? await changedLines(original, next, deps) : await unansweredItems(original, deps);
  if (chosen.length === 0) {
    throw new ConflictError(
      next
        ? `Nothing to retry: no request in the body differs from job ${jobId}'s.`
        : `Nothing to retry: every item of job ${jobId} succeeded.`,
    );
  }
  if (chosen.length > LIMITS.maxItems) {
    throw new ValidationError(
      `A retry holds at most ${LIMITS.maxItems} items; this one has ${chosen.length}.`,
      [{ field: 'items', message: `${chosen.length} items > ${LIMITS.maxItems}` }],
    );
  }
  const items = rerunItems(chosen);
  const key = idempotency && idempotencyRecord(idempotency, { retryOf: jobId, body: body ?? {} });
  const id = randomUUID();
  const mode: JobMode = original.mode === 'flex' ? 'flex' : 'realtime';
  const stored = await deps.lifecycle.create(
    {
      id,
      model: original.model,
      mode,
      total: items.length,
      source: 'api',
      ...(original.owner ? { owner: original.owner } : {}),
      counterShards: counterShardsFor(deps.quotas.models[original.model]?.rpm ?? 60),
      paths: { realtime: items.length, batch: 0 },
      ...(original.callbackUrl ? { callbackUrl: original.callbackUrl } : {}),
      retryOf: jobId,
    },
    items,
    key,
  );
  if (stored.replayed) return replayedRetry(stored, key?.bodyHash, jobId, deps);
  // The link on the old job comes after the new job exists: a crash between leaves a job that says
  // `retryOf` and an old one without `retries`; a replay with the same key links it again.
  await deps.lifecycle.linkRetry(jobId, id);
  await deps.lifecycle.startEnqueue(id);
  deps.logger.info(
    { event: 'job.retried', jobId: id, retryOf: jobId, total: items.length, onlyChanged: Boolean(next) },
    'job created as a retry',
  );
  return {
    created: { id, status: 'queued', mode, total: items.length, links: linksFor(id) },
    replayed: false,
  };
}

/** 409 unless every item of the job has ended (a cancel still being swept counts as running). */
function refuseUnfinished(job: JobRecord): void {
  if (!isTerminalJob(job.status) || job.cancelPending) {
    throw new ConflictError(
      `Job ${job.id} is ${job.cancelPending ? 'still ending its cancelled items' : job.status}; retry it once it has finished (or cancel it first).`,
    );
  }
}

/** The body's new prompt set, built with the original job's model; undefined for an empty body. */
function newPromptSet(
  body: unknown,
  original: JobRecord,
  deps: IngestDeps,
  owner: string,
): NewItem[] | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body !== 'object' || Array.isArray(body))
    throw new ValidationError('A retry body is a JSON object.', [
      { field: 'body', message: 'not an object' },
    ]);
  const extra = Object.keys(body).filter((k) => !BODY_FIELDS.has(k));
  if (extra.length > 0) {
    throw new ValidationError(
      `A retry body may have only ${[...BODY_FIELDS].join(', ')}: the model and mode are the original job's.`,
      extra.map((field) => ({ field, message: 'not allowed in a retry' })),
    );
  }
  const b = body as Record<string, unknown>;
  if (b.requests === undefined && b.prompts === undefined) return undefined;
  return validateJob({ ...b, model: original.model, mode: 'realtime' }, deps, Date.now(), owner).normalized
    .items;
}

/** Every item of the job in input order, a page at a time. */
async function* itemsOf(jobId: string, deps: IngestDeps): AsyncGenerator<ItemRecord> {
  let afterId: string | undefined;
  for (;;) {
    const page = await deps.lifecycle.listItems(jobId, { ...(afterId ? { afterId } : {}), limit: READ_PAGE });
    yield* page;
    if (page.length < READ_PAGE) return;
    afterId = page[page.length - 1]!.id;
  }
}

/** The job's items with no answer (failed, cancelled). */
async function unansweredItems(job: JobRecord, deps: IngestDeps): Promise<NewItem[]> {
  const chosen: NewItem[] = [];
  for await (const item of itemsOf(job.id, deps)) if (needsRerun(item)) chosen.push(item);
  return chosen;
}

/** The new set's lines whose request differs from the original item of the same key. */
async function changedLines(job: JobRecord, next: NewItem[], deps: IngestDeps): Promise<NewItem[]> {
  const originals: OriginalRequest[] = [];
  for await (const item of itemsOf(job.id, deps)) originals.push({ key: item.key, hash: requestHash(item) });
  return changedItems(originals, next);
}

/** The job an earlier retry with the same key made; another body with that key is a conflict. */
async function replayedRetry(
  stored: { jobId: string; bodyHash: string },
  bodyHash: string | undefined,
  retryOf: string,
  deps: IngestDeps,
): Promise<{ created: CreatedJob; replayed: boolean }> {
  const job = await deps.lifecycle.getJob(stored.jobId);
  if (stored.bodyHash !== bodyHash || !job || job.retryOf !== retryOf) {
    throw new ConflictError('This Idempotency-Key was used with another body; use a new key for a new job.', [
      { field: 'Idempotency-Key', message: 'already used with another body' },
    ]);
  }
  await deps.lifecycle.linkRetry(retryOf, job.id);
  return {
    created: { id: job.id, status: job.status, mode: job.mode, total: job.total, links: linksFor(job.id) },
    replayed: true,
  };
}
