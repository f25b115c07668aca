/** A staged run's step: upload its input and create its batch (never two), or send its items back. */
import type { JobRecord } from '../../core/jobs.js';
import { requestLimitsFor } from '../../core/quotas.js';
import { isGone } from '../../platform/gemini/batch-api.js';
import { GeminiCallError } from '../../platform/gemini/client.js';
import { UploadAnswerError } from '../../platform/gemini/files-upload.js';
import type { Logger } from '../../platform/logger.js';
import type { BatchRun } from '../../platform/store/batch-runs.js';
import {
  advance,
  type BatchCycleDeps,
  DEFAULT_MAX_STEP_FAILURES,
  fallBack,
  lease,
  removeFiles,
  type StepOutcome,
} from './run-steps.js';
import { byteLengthOf, stagedLines } from './staged-lines.js';

/**
 * Whole-file uploads answered without a file (or with a transient error in its place) before the
 * part falls back: each try sends the whole part (up to 2 GB) again. The step's own bound
 * (`maxStepFailures`) applies when it is lower.
 */
export const UPLOAD_TRIES = 3;
/**
 * An input file older than this is uploaded again before a create: the Files API deletes files
 * 48 h after their upload (ai.google.dev/gemini-api/docs/files), and half that leaves a batch made
 * from it a day to read it.
 */
export const FILE_REUSE_MS = 24 * 3_600_000;

/** The step of a `staged` run in `batchCycle` (see there): it leases the run first. */
export async function submitRun(
  run: BatchRun,
  job: JobRecord,
  deps: BatchCycleDeps,
  log: Logger,
): Promise<StepOutcome> {
  const now = (deps.now ?? Date.now)();
  const held = await lease(run, deps, now);
  if (!held) return undefined;
  if (held.createStartedMs !== null && (await adoptCreated(held, job, deps, log, now))) return 'submitted';
  if (!held.fileName && held.deferredSinceMs != null && (await ownPartsInFlight(held, deps))) {
    // Waiting behind the job's own batches (see `createFrom`): the input is uploaded only once they
    // have ended, just before its create, so it does not sit out its 48 h meanwhile.
    await advance(held, { deferredSinceMs: now, leaseUntilMs: null }, deps);
    return 'deferred';
  }
  const input = await ensureInput(held, job, deps, log, now);
  if (input === 'fellBack') return input;
  return createFrom(input, job, deps, log, now);
}

/**
 * A tick started creating this batch and stopped: it may exist upstream. Never create two: a batch
 * of the run's displayName is adopted. Whether one was.
 */
async function adoptCreated(
  held: BatchRun,
  job: JobRecord,
  deps: BatchCycleDeps,
  log: Logger,
  now: number,
): Promise<boolean> {
  for await (const b of deps.api.listBatches()) {
    if (b.displayName !== held.displayName) continue;
    await advance(
      held,
      {
        state: 'running',
        batchName: b.name,
        createdAtMs: now,
        upstream: b.state,
        stats: b.stats,
        leaseUntilMs: null,
      },
      deps,
    );
    await deps.lifecycle.markRunning(job.id);
    log.warn({ event: 'batch.adopted', batch: b.name }, 'found the batch an earlier tick created');
    return true;
  }
  return false;
}

/** Whether another part of the run's job has a batch upstream that has not ended. */
async function ownPartsInFlight(held: BatchRun, deps: BatchCycleDeps): Promise<boolean> {
  return (await deps.runs.listForJob(held.jobId)).some((r) => r.id !== held.id && r.state === 'running');
}

/**
 * The run with an input file young enough to create from: the one it has, or a new upload (an old
 * one is deleted first). An upload that will not succeed by trying again sends the items back.
 */
async function ensureInput(
  run: BatchRun,
  job: JobRecord,
  deps: BatchCycleDeps,
  log: Logger,
  now: number,
): Promise<BatchRun | 'fellBack'> {
  let held = run;
  // A file recorded before its upload time was (fileUploadedMs absent) counts as new: if it has
  // expired after all, the create says so and it is uploaded again.
  if (held.fileName && now - (held.fileUploadedMs ?? now) < FILE_REUSE_MS) return held;
  if (held.fileName) {
    log.info({ event: 'batch.input_renewed', file: held.fileName }, 'batch input too old; uploading again');
    const old = held.fileName;
    held = await advance(held, { fileName: null, fileUploadedMs: null }, deps);
    await removeFiles([old], deps);
  }
  let file: { name: string; sizeBytes: number };
  try {
    file = await uploadInput(held, job, deps);
  } catch (err) {
    const reason = uploadGiveUp(err, held, deps);
    if (!reason) throw err;
    await fallBack(held, job, `the batch input could not be uploaded: ${reason}`, deps, log);
    return 'fellBack';
  }
  held = await advance(held, { fileName: file.name, fileUploadedMs: now }, deps);
  log.info({ event: 'batch.uploaded', file: file.name, bytes: file.sizeBytes }, 'batch input uploaded');
  return held;
}

/**
 * Streams the run's share of the staged set into a Files API upload. The upload declares its size
 * at start (as the SDK and the docs do), and the lines are written anew from the staged ones, so a
 * first pass counts their bytes; the staged set is read at its recorded generation both times.
 */
async function uploadInput(held: BatchRun, job: JobRecord, deps: BatchCycleDeps) {
  const rules = { limits: requestLimitsFor(deps.quotas, job.model), model: job.model };
  const lines = () => stagedLines(held, job, deps.objects, rules);
  const sizeBytes = await byteLengthOf(lines());
  return deps.api.uploadJsonl(lines(), { displayName: held.displayName, sizeBytes });
}

/**
 * Why an upload is given up on now: a refusal (see `permanentFailure`), or a final answer without a
 * file on the last of its `UPLOAD_TRIES` (this tick's failure included). Undefined: try next tick.
 */
function uploadGiveUp(err: unknown, held: BatchRun, deps: BatchCycleDeps): string | undefined {
  const refused = permanentFailure(err);
  if (refused) return refused;
  if (!(err instanceof UploadAnswerError)) return undefined;
  const tries = (held.stepFailures ?? 0) + 1;
  const bound = Math.min(UPLOAD_TRIES, deps.maxStepFailures ?? DEFAULT_MAX_STEP_FAILURES);
  return tries >= bound ? `${err.message} (${tries} uploads)` : undefined;
}

/**
 * Records that creation is starting, then creates the batch from the run's file. A 429 waits (see
 * `deferCreate`); a file gone upstream is uploaded again next tick; any other refusal sends the
 * items back.
 */
async function createFrom(
  run: BatchRun,
  job: JobRecord,
  deps: BatchCycleDeps,
  log: Logger,
  now: number,
): Promise<StepOutcome> {
  // A create started before (its answer lost) and its batch not in the list: this create may make a
  // second one, once the first shows up. The run remembers, and ticks cancel the twin.
  const ambiguous = run.createStartedMs !== null;
  const held = await advance(
    run,
    { createStartedMs: now, ...(ambiguous ? { ambiguousCreate: true } : {}) },
    deps,
  );
  try {
    const info = await deps.api.createBatch(job.model, held.fileName!, held.displayName);
    const running = {
      state: 'running' as const,
      batchName: info.name,
      createdAtMs: now,
      upstream: info.state,
      stats: info.stats,
      leaseUntilMs: null,
    };
    await advance(held, running, deps);
    await deps.lifecycle.markRunning(job.id);
    log.info({ event: 'batch.created', batch: info.name, items: held.items }, 'batch created');
    return 'submitted';
  } catch (err) {
    if (err instanceof GeminiCallError && err.httpStatus === 429)
      return deferCreate(held, job, err, deps, log, now);
    if (err instanceof GeminiCallError && isInputGone(err)) {
      // The input expired (48 h) or was deleted: nothing was created. The next tick uploads it again.
      await advance(held, { fileName: null, fileUploadedMs: null, createStartedMs: null }, deps);
      throw new Error(`the batch input ${held.fileName} is gone upstream; it is uploaded again`);
    }
    const refused = permanentFailure(err);
    if (!refused) throw err;
    // A 4xx on create: nothing was created, and the same request would be refused again.
    await fallBack(held, job, `Gemini refused the batch: ${refused}`, deps, log);
    return 'fellBack';
  }
}

/**
 * Too many batches, or the model's enqueued tokens are at their cap: nothing was created. Waiting
 * is bounded like a pending batch: past the deadline the items go back. A wait behind the job's own
 * batches still in flight (the parts it was split into for that cap) is not counted: those hand
 * their tokens back as they end, and have deadlines of their own; meanwhile the part's file is
 * deleted, to be uploaded again just before the create that follows them.
 */
async function deferCreate(
  held: BatchRun,
  job: JobRecord,
  err: GeminiCallError,
  deps: BatchCycleDeps,
  log: Logger,
  now: number,
): Promise<StepOutcome> {
  const ownInFlight = await ownPartsInFlight(held, deps);
  const since = ownInFlight ? now : (held.deferredSinceMs ?? now);
  if (now - since > deps.pendingDeadlineMs) {
    const reason = `Gemini refused the batch with 429 for ${Math.round((now - since) / 1000)} s`;
    await fallBack(held, job, reason, deps, log);
    return 'fellBack';
  }
  const dropFile = ownInFlight ? { fileName: null, fileUploadedMs: null } : {};
  await advance(
    held,
    { createStartedMs: null, leaseUntilMs: null, deferredSinceMs: since, ...dropFile },
    deps,
  );
  if (ownInFlight) await removeFiles([held.fileName], deps);
  log.warn(
    { event: 'batch.create_deferred', err: err.message, behindOwnParts: ownInFlight },
    'Gemini is at its batch limit; next tick tries again',
  );
  return 'deferred';
}

/** A create refused because its input file is gone (expired or deleted), not for anything else. */
function isInputGone(err: GeminiCallError): boolean {
  const message = (err.body as { error?: { message?: unknown } } | undefined)?.error?.message;
  return isGone(err) && typeof message === 'string' && /\bfile\b/i.test(message);
}

/**
 * The message of an error that will not go away by trying again: Gemini's 4xx other than 429, or
 * the staged set gone from the bucket (404). Undefined for anything that may pass (5xx, network).
 */
function permanentFailure(err: unknown): string | undefined {
  if (err instanceof GeminiCallError) {
    const s = err.httpStatus;
    return s !== undefined && s >= 400 && s < 500 && s !== 429 && s !== 408 ? err.message : undefined;
  }
  return (err as { code?: unknown }).code === 404 ? 'the staged set is gone from the bucket' : undefined;
}
