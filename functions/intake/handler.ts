import { createHash } from 'node:crypto';
import { routeJob } from '../core/batch.js';
import {
  bucketOwnerOf,
  lineDefaults,
  parseFileOptions,
  resultsObjectName,
  skipReason,
  summaryObjectName,
} from '../core/bucket-input.js';
import { counterShardsFor, type JobMode } from '../core/jobs.js';
import { normalizeModelName, type Quotas } from '../core/quotas.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { Logger } from '../platform/logger.js';
import type { ObjectStore } from '../platform/object-store.js';
import { isAlreadyExists } from '../platform/store/firestore.js';
import { type BucketCaps, readOrStop } from './caps.js';
import { type FileHead, readFileHead } from './file-head.js';
import {
  fileKind,
  type PipelineFileLifecycle,
  pipelineFileParts,
  pipelineFileRoute,
  startPipelineFile,
} from './pipeline-file.js';
import { readLines } from './read-lines.js';

/** Where reading a file stopped, in its summary, when it passed a cap. */
interface StoppedAt {
  line: number;
  reason: 'lines' | 'bytes';
  cap: number;
}

/** The part of a Cloud Storage object resource (the event's data) intake reads. */
export interface StorageObject {
  bucket: string;
  name: string;
  generation?: string | number;
  metadata?: Record<string, unknown>;
}

export interface IntakeDeps {
  lifecycle: Pick<Lifecycle, 'commit'> & PipelineFileLifecycle;
  objects: Pick<ObjectStore, 'read' | 'putJson'>;
  quotas: Quotas;
  logger: Logger;
  /** The project's bucket: events from any other are ignored. */
  bucket: string;
  /** The media roots (see MEDIA_GCS_ALLOWED): a job reads its owner's folder in each. */
  mediaGcsAllowed?: readonly string[];
  /** Read-only media prefixes every job may read (see MEDIA_GCS_SHARED). */
  mediaGcsShared?: readonly string[];
  /** Bucket owners: owner prefix → identity (see FANOUT_BUCKET_OWNERS). */
  bucketOwners?: Readonly<Record<string, string>>;
  /** The caps on a file (BUCKET_MAX_LINES, BUCKET_MAX_BYTES); none when absent. */
  caps?: BucketCaps;
}

export type IntakeResult =
  | { outcome: 'ignored'; reason: string }
  | { outcome: 'duplicate'; jobId: string }
  | { outcome: 'rejected'; jobId: string; message: string }
  | { outcome: 'created'; jobId: string; total: number };

/**
 * The job id of a file: derived from bucket, name and generation, so a redelivered or duplicated
 * finalize event makes no second job, and a new upload under the same name (a new generation) does.
 */
export function jobIdForObject(bucket: string, name: string, generation: string): string {
  const h = createHash('sha256').update(`${bucket}/${name}#${generation}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * A JSONL file finalized under `inbox/` becomes a job: its lines are streamed (bounded memory) into
 * items, a chunk at a time; bad lines become items born failed (their error line stands in the
 * results); the job is routed (realtime or the Batch API) once its size is known, and created last.
 * Throws to have the event delivered again (a retry redoes the same writes), returns to acknowledge.
 */
export async function intakeObject(object: StorageObject, deps: IntakeDeps): Promise<IntakeResult> {
  const opened = await openFile(object, deps);
  if ('outcome' in opened) return opened;
  const { file, log, reject } = opened;
  const read = await readOrStop(() =>
    readLines(
      file.kind.store,
      { name: file.name, generation: file.generation, headerLine: file.head.headerLine },
      file.model,
      file.options,
      file.owner,
      deps,
    ),
  );
  if ('stopped' in read) {
    const { line, reason, cap, message } = read.stopped;
    return reject(message, { line, reason, cap });
  }
  if ('gone' in read) return gone(log);
  if (read.total === 0) return reject('the file has no lines');
  // A pipeline's route is its metadata's (./pipeline-file.ts): realtime unless it says batch.
  const { pipeline } = file.kind;
  const route = pipeline
    ? pipelineFileRoute(file.options.mode, pipeline, deps.quotas)
    : routeJob(file.options.mode, read.total, file.model, deps.quotas);
  if ('problem' in route) return reject(route.problem);
  return createFileJob(file, read, route.mode, deps, log);
}

/** A file that passed every check before its lines are read. */
interface OpenedFile {
  bucket: string;
  name: string;
  generation: string;
  jobId: string;
  /** Where its results go. */
  output: string;
  owner: string | undefined;
  options: Exclude<ReturnType<typeof parseFileOptions>, { problem: string }>;
  head: FileHead;
  model: string;
  kind: Exclude<ReturnType<typeof fileKind>, { problem: string }>;
}

type Reject = (message: string, stoppedAt?: StoppedAt) => Promise<IntakeResult>;

/**
 * The checks a file passes before its lines are read: the bucket and path, a job made of it already,
 * its owner, its metadata, its head (a pipeline header, the first line's model) and its model. The
 * result to acknowledge the event with, or the file and how to refuse it later.
 */
async function openFile(
  object: StorageObject,
  deps: IntakeDeps,
): Promise<IntakeResult | { file: OpenedFile; log: Logger; reject: Reject }> {
  const { bucket, name } = object;
  const reason = skipReason(bucket, name, deps.bucket);
  if (reason) {
    deps.logger.info({ event: 'intake.ignored', bucket, object: name, reason }, `ignored: ${reason}`);
    return { outcome: 'ignored', reason };
  }
  const generation = String(object.generation ?? '0');
  const jobId = jobIdForObject(bucket, name, generation);
  const log = deps.logger.child({ jobId, object: name, generation });
  if (await deps.lifecycle.getJob(jobId)) {
    log.info({ event: 'intake.duplicate' }, 'this file is a job already');
    return { outcome: 'duplicate', jobId };
  }
  const output = resultsObjectName(name);
  const reject: Reject = (message, stoppedAt) =>
    rejectFile({ bucket, name, jobId, output, message, stoppedAt }, deps.objects, log);

  const owned = bucketOwnerOf(name, deps.bucketOwners ?? {});
  if ('problem' in owned) return reject(owned.problem);
  const options = parseFileOptions(object.metadata);
  if ('problem' in options) return reject(options.problem);
  let head: FileHead | { problem: string };
  try {
    head = await readFileHead(name, generation, deps.objects);
  } catch (err) {
    if ((err as { code?: unknown }).code !== 404) throw err;
    return gone(log);
  }
  if ('problem' in head) return reject(head.problem);
  // A file whose metadata names no model runs its first item's (Batch API lines name one).
  const model = normalizeModelName(options.model ?? head.firstModel ?? deps.quotas.defaultModel);
  if (!Object.hasOwn(deps.quotas.models, model)) {
    return reject(
      `unknown model ${model}; this deployment serves ${Object.keys(deps.quotas.models).join(', ')}`,
    );
  }
  // A pipeline header's steps, checked by the engine (./pipeline-file.ts): a bad one refuses the file.
  const kind = fileKind(jobId, head, options.mode, model, deps);
  if ('problem' in kind) return reject(kind.problem);
  const file = { bucket, name, generation, jobId, output, owner: owned.owner, options, head, model, kind };
  return { file, log, reject };
}

/** The file's generation is gone (deleted or replaced before it was read): nothing to do. */
function gone(log: Logger): IntakeResult {
  log.warn({ event: 'intake.gone' }, 'the file (this generation) is gone; nothing to do');
  return { outcome: 'ignored', reason: 'this generation of the file is gone' };
}

/**
 * The job of a file whose lines are stored: its spec (a pipeline's unit jobs too), created last, then
 * started — its items enqueued, its pipeline's first step begun, or, every line bad, finished.
 */
async function createFileJob(
  file: OpenedFile,
  read: Awaited<ReturnType<typeof readLines>>,
  mode: JobMode,
  deps: IntakeDeps,
  log: Logger,
): Promise<IntakeResult> {
  const { jobId, model, options } = file;
  const { pipeline } = file.kind;
  // A batch pipeline's batches are its unit jobs' (staged by the tick), not the file's.
  const batch = mode === 'batch' && !pipeline;
  const batchItems = batch ? read.batchable : 0;
  const spec = {
    id: jobId,
    model,
    mode,
    total: read.total,
    source: `gs://${file.bucket}/${file.name}`,
    ...(file.owner ? { owner: file.owner } : {}),
    counterShards: counterShardsFor(deps.quotas.models[model]!.rpm),
    paths: { realtime: read.total - read.bornFailed - batchItems, batch: batchItems },
    output: file.output,
    ...(batch
      ? {
          onBatchFailure: options.onBatchFailure,
          staged: { object: file.name, generation: file.generation, defaults: lineDefaults(options) },
        }
      : {}),
  };
  const parts = pipeline && pipelineFileParts(spec, pipeline, deps.quotas);
  try {
    await deps.lifecycle.commit(parts?.spec ?? spec, undefined, {
      runs: batch ? read.parts : [],
      bornFailed: read.bornFailed,
      ...(parts ? { unitJobs: parts.unitJobs } : {}),
    });
  } catch (err) {
    // The same event delivered twice at once: the other delivery made the job.
    if (isAlreadyExists(err)) return { outcome: 'duplicate', jobId };
    throw err;
  }
  if (parts) await startPipelineFile(jobId, parts, deps.lifecycle, log);
  else if (spec.paths.realtime > 0) await deps.lifecycle.startEnqueue(jobId);
  // Every line bad: nothing will run, so nothing else would finish it.
  else if (batchItems === 0) await deps.lifecycle.finishIfDone(jobId, log);
  log.info(
    {
      event: 'job.created',
      model,
      mode,
      total: read.total,
      bad: read.bornFailed,
      parts: batch ? read.parts.length : 0,
    },
    'file became a job',
  );
  return { outcome: 'created', jobId, total: read.total };
}

/** A refused file: no job, only its summary, which says why (and where reading stopped, at a cap). */
async function rejectFile(
  file: {
    bucket: string;
    name: string;
    jobId: string;
    output: string;
    message: string;
    stoppedAt?: StoppedAt | undefined;
  },
  objects: Pick<ObjectStore, 'putJson'>,
  log: Logger,
): Promise<IntakeResult> {
  const { message, stoppedAt } = file;
  await objects.putJson(summaryObjectName(file.output), {
    job: null,
    source: `gs://${file.bucket}/${file.name}`,
    status: 'failed',
    error: { code: 400, status: 'INVALID_ARGUMENT', message },
    ...(stoppedAt ? { stoppedAt } : {}),
  });
  log.warn({ event: 'intake.rejected', message, ...(stoppedAt ? { stoppedAt } : {}) }, message);
  return { outcome: 'rejected', jobId: file.jobId, message };
}
