import { FieldValue, type Firestore } from '@google-cloud/firestore';
import type { BatchPart } from '../../core/batch.js';
import { OPEN_RUN_STATES, type RunState, type UpstreamState } from '../../core/batch-run.js';
import { decodeVersion, encodeVersion, isAlreadyExists, isPreconditionFailure } from './firestore.js';

/** Gemini's `batchStats`, as numbers. */
export interface RunStats {
  requestCount: number;
  successfulRequestCount: number;
  failedRequestCount: number;
  pendingRequestCount: number;
}

/**
 * One batch of a job, as the scheduler tick drives it: staged → running → collected | fallen-back |
 * cancelled. The record is written before the upstream batch is created (creation is not idempotent
 * upstream), and every step is taken under a lease with a precondition on the record's version, so
 * two ticks at once never do the same step twice.
 */
export interface BatchRun extends BatchPart {
  id: string;
  jobId: string;
  model: string;
  displayName: string;
  state: RunState;
  /** The tick that holds the run until then may work on it; others leave it alone. */
  leaseUntilMs: number | null;
  /** The uploaded input file (`files/…`), once uploaded. */
  fileName: string | null;
  /** When `fileName` was uploaded: the Files API keeps a file 48 h, so an old one is uploaded again. */
  fileUploadedMs?: number | null;
  /** The upstream batch (`batches/…`), once created. */
  batchName: string | null;
  /** When creation was first attempted: a crash after it means "look for the batch by name". */
  createStartedMs: number | null;
  /** Since when creation has been refused with 429 (too many batches, enqueued tokens at the cap). */
  deferredSinceMs?: number | null;
  createdAtMs: number | null;
  upstream: UpstreamState | null;
  stats: RunStats | null;
  /** Why its items went back to the realtime path (or failed). */
  fallback: string | null;
  /** How many of its items went back to the realtime path. */
  rerouted: number;
  /** The last step's error while the run is retried at the next tick; null once a step passes. */
  lastError?: string | null;
  /** Failed ticks in a row on the run's current step; 0 once a step passes. */
  stepFailures?: number;
  /** When the current run of failures began (null: none). With `stepFailures`, what bounds a step. */
  stepSince?: number | null;
  /** Why we cancelled its batch ourselves (set before the cancel lands): its items end with it. */
  cancelReason?: string | null;
  /**
   * A create whose answer was lost was followed by another create: a twin may show up upstream
   * under the same displayName, and ticks look for it and cancel it while the run is open.
   */
  ambiguousCreate?: boolean;
  version: string;
}

export type RunPatch = Partial<
  Pick<
    BatchRun,
    | 'state'
    | 'leaseUntilMs'
    | 'fileName'
    | 'fileUploadedMs'
    | 'batchName'
    | 'createStartedMs'
    | 'deferredSinceMs'
    | 'createdAtMs'
    | 'upstream'
    | 'stats'
    | 'fallback'
    | 'rerouted'
    | 'lastError'
    | 'stepFailures'
    | 'stepSince'
    | 'cancelReason'
    | 'ambiguousCreate'
  >
>;

/** `batchRuns/{jobId}-p{part}`: a top-level collection, so "every open run" is one indexed query. */
export interface BatchRunsStore {
  /**
   * Stores the job's runs as `staged` (before the job itself, like its items); a run that exists
   * already is left as it is (a duplicate intake must not send a running batch back to `staged`).
   */
  createMany(runs: Array<BatchPart & { jobId: string; model: string; displayName: string }>): Promise<void>;
  listOpen(limit: number): Promise<BatchRun[]>;
  listForJob(jobId: string): Promise<BatchRun[]>;
  /**
   * The run that follows upstream batch `batchName` (`batches/…`), or undefined: what a batch
   * webhook names. A twin batch (see `ambiguousCreate`) is followed by no run.
   */
  findByBatchName(batchName: string): Promise<BatchRun | undefined>;
  /**
   * Writes `patch` if the run is still at `run.version`: the new version, or undefined when another
   * tick wrote it first. A terminal `state` closes the run (it leaves `listOpen`).
   */
  update(run: BatchRun, patch: RunPatch): Promise<string | undefined>;
}

export function createBatchRunsStore(db: Firestore, prefix = ''): BatchRunsStore {
  const runs = db.collection(`${prefix}batchRuns`);
  const from = (snap: FirebaseFirestore.DocumentSnapshot): BatchRun => {
    const d = snap.data() ?? {};
    return {
      id: snap.id,
      jobId: d.jobId,
      model: d.model,
      displayName: d.displayName,
      part: d.part,
      fromIndex: d.fromIndex,
      toIndex: d.toIndex,
      fromByte: d.fromByte,
      toByte: d.toByte,
      items: d.items,
      tokens: d.tokens,
      state: d.state,
      leaseUntilMs: d.leaseUntilMs ?? null,
      fileName: d.fileName ?? null,
      fileUploadedMs: d.fileUploadedMs ?? null,
      batchName: d.batchName ?? null,
      createStartedMs: d.createStartedMs ?? null,
      deferredSinceMs: d.deferredSinceMs ?? null,
      createdAtMs: d.createdAtMs ?? null,
      upstream: d.upstream ?? null,
      stats: d.stats ?? null,
      fallback: d.fallback ?? null,
      rerouted: d.rerouted ?? 0,
      lastError: d.lastError ?? null,
      stepFailures: d.stepFailures ?? 0,
      stepSince: d.stepSince ?? null,
      cancelReason: d.cancelReason ?? null,
      ambiguousCreate: d.ambiguousCreate ?? false,
      ...(Array.isArray(d.skip) && d.skip.length > 0 ? { skip: d.skip } : {}),
      version: encodeVersion(snap.updateTime!),
    };
  };
  return {
    async createMany(list) {
      await Promise.all(
        list.map((r) =>
          runs
            .doc(`${r.jobId}-p${r.part}`)
            .create({ ...r, state: 'staged', open: true, createdAt: FieldValue.serverTimestamp() })
            .catch((err: unknown) => {
              if (!isAlreadyExists(err)) throw err;
            }),
        ),
      );
    },

    async listOpen(limit) {
      const snap = await runs.where('open', '==', true).limit(limit).get();
      return snap.docs.map(from);
    },

    async listForJob(jobId) {
      const snap = await runs.where('jobId', '==', jobId).get();
      return snap.docs.map(from).sort((a, b) => a.part - b.part);
    },

    async findByBatchName(batchName) {
      const snap = await runs.where('batchName', '==', batchName).limit(1).get();
      const doc = snap.docs[0];
      return doc ? from(doc) : undefined;
    },

    async update(run, patch) {
      try {
        const written = await runs
          .doc(run.id)
          .update(
            { ...patch, ...(patch.state ? { open: OPEN_RUN_STATES.includes(patch.state) } : {}) },
            { lastUpdateTime: decodeVersion(run.version) },
          );
        return encodeVersion(written.writeTime);
      } catch (err) {
        if (isPreconditionFailure(err)) return undefined;
        throw err;
      }
    },
  };
}
