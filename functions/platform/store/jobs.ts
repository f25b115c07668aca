import { FieldValue, type Firestore } from '@google-cloud/firestore';
import {
  isTerminalJob,
  type JobRecord,
  type JobSpec,
  type JobStatus,
  newJobFields,
  type ReconcileCounts,
} from '../../core/jobs.js';
import type { Totals } from '../../core/totals.js';
import { type CallbackOrder, callbacksCollection, newCallbackFields } from './callbacks.js';
import { decodeVersion, ignorePreconditionFailure, isAlreadyExists, landed } from './firestore.js';
import type { OverdueCursor } from './items.js';
import { DEFAULT_RETENTION_MS, expireAtFor, jobFrom } from './job-codec.js';
import { createEnqueueHold } from './job-enqueue-hold.js';

/** An `Idempotency-Key` as stored: which job it made, from which body. */
export interface IdempotencyRecord {
  jobId: string;
  bodyHash: string;
}

/** `jobs/{jobId}` and `idempotencyKeys/{keyId}`. */
export interface JobsStore {
  get(jobId: string): Promise<JobRecord | undefined>;
  /**
   * Stores the job as `queued` (its items must be stored already). With `idempotency`, the key is
   * recorded in the same commit; if the key exists already, nothing is written and its record is
   * returned instead.
   */
  create(
    spec: JobSpec,
    enqueueDueMs: number,
    idempotency?: { keyId: string; bodyHash: string },
  ): Promise<{ created: true } | { created: false; existing: IdempotencyRecord }>;
  findIdempotency(keyId: string): Promise<IdempotencyRecord | undefined>;
  /** First claim of a queued job: marks it running, unless someone else changed it meanwhile. */
  markRunning(jobId: string, version: string): Promise<void>;
  /**
   * Enqueuing reached `through`; it is due to go on (or be seen stalled) by `dueMs`. With `ifVersion`,
   * only if the job is still at that version: false when someone else wrote it first; and then
   * whoever held the enqueue (`holdEnqueue`) is taken to have stalled: the hold is given up.
   */
  setEnqueued(jobId: string, through: number, dueMs: number, ifVersion?: string): Promise<boolean>;
  /**
   * Takes (or keeps) the job's enqueuing for `holder`, one delivery of an enqueue task, until
   * `untilMs`; false while another holder's hold lasts past `nowMs`. Two deliveries of one enqueue
   * task (Cloud Tasks delivers at least once) would each plan the same items on the ledger and
   * create their tasks again, cut differently.
   */
  holdEnqueue(jobId: string, holder: string, nowMs: number, untilMs: number): Promise<boolean>;
  /** Gives the hold up if `holder` has it. */
  releaseEnqueue(jobId: string, holder: string): Promise<void>;
  setNotice(jobId: string, notice: string | null): Promise<void>;
  /** Records the job's calibrated token ratio (see `JobRecord.tokenRatio`). */
  setTokenRatio(jobId: string, ratio: number): Promise<void>;
  /** Links a re-run to the job it re-ran (`JobRecord.retries`); linking twice adds it once. */
  addRetry(jobId: string, retryId: string): Promise<void>;
  /** Marks the job stopped by its budget, with its notice (writing it again changes nothing). */
  stopForBudget(jobId: string, notice: string): Promise<void>;
  /**
   * Records that a batch pipeline's later unit job is staged (lifecycle/pipeline-batch.ts): its
   * staged set, its paths and its parts' counter documents. Writing it again changes nothing.
   */
  setStaged(
    jobId: string,
    staged: Required<Pick<JobSpec, 'staged' | 'paths' | 'extraCounters'>>,
  ): Promise<void>;
  /**
   * Turns the job terminal if it is still at `version`; false when someone else wrote it first. With
   * `callback`, the job's outbox record is written in the same commit (both or neither).
   */
  finish(
    jobId: string,
    version: string,
    status: JobStatus,
    totals: Totals,
    startedAt: Date | null,
    callback?: CallbackOrder,
  ): Promise<boolean>;
  /** Turns the job cancelled in a transaction. `changed` only for the call that did it. */
  cancel(jobId: string): Promise<{ job: JobRecord; changed: boolean } | undefined>;
  /**
   * A cancel ended every pending item: freeze its totals, if the job is still at `version`. With
   * `callback`, the job's outbox record is written in the same commit (both or neither).
   */
  completeCancel(jobId: string, totals: Totals, version: string, callback?: CallbackOrder): Promise<boolean>;
  /** Counts a reconciler action in the job's view. */
  countReconcile(jobId: string, what: keyof ReconcileCounts, n?: number): Promise<void>;
  /** Bucket jobs whose results file is still to be written (terminal or not). */
  listExportPending(limit: number): Promise<JobRecord[]>;
  /**
   * Takes the job's export until `untilMs` if the job is still at `version` and no other export
   * holds it: false when another tick has it.
   */
  claimExport(job: JobRecord, nowMs: number, untilMs: number): Promise<boolean>;
  /** The results file is written. */
  markExported(jobId: string): Promise<void>;
  /**
   * Jobs newest first: one owner's, or every job without `owner`. `after` is the id of the last job
   * of the previous page; `next` is there when another page may follow.
   */
  listRecent(options: { owner?: string; limit: number; after?: string }): Promise<{
    jobs: JobRecord[];
    next?: string;
  }>;
  /** Jobs that are not terminal, and cancelled jobs whose cancel has not finished, by id. */
  listUnsettled(limit: number, afterId?: string): Promise<JobRecord[]>;
  /** Where the reconciler's sweeps go on (empty before the first tick). */
  readReconcileCursor(): Promise<ReconcileCursor>;
  /** Keeps where the reconciler's sweeps go on at the next tick; the last writer wins (ticks may overlap). */
  writeReconcileCursor(cursor: ReconcileCursor): Promise<void>;
}

/**
 * Where the reconciler goes on at the next tick (`reconciler/cursor`), so that every unsettled job
 * and every overdue item gets its turn however many there are: after the job `jobsAfter`, and after
 * the overdue item `overdueAfter`. Absent: from the start.
 */
export interface ReconcileCursor {
  jobsAfter?: string;
  overdueAfter?: OverdueCursor;
}

export function createJobsStore(db: Firestore, prefix = '', retentionMs = DEFAULT_RETENTION_MS): JobsStore {
  const jobs = db.collection(`${prefix}jobs`);
  const keys = db.collection(`${prefix}idempotencyKeys`);
  const callbacks = callbacksCollection(db, prefix);
  /**
   * The job's update under its version precondition, and its callback's outbox record in the same
   * commit: a failed precondition writes neither. `set`, not `create`: a job ends once (the
   * precondition), and a record written again would at worst send the callback again.
   */
  const withCallback = (jobId: string, patch: object, version: string, callback?: CallbackOrder) => {
    const batch = db.batch().update(jobs.doc(jobId), patch, { lastUpdateTime: decodeVersion(version) });
    return callback ? batch.set(callbacks.doc(jobId), newCallbackFields(jobId, callback)) : batch;
  };
  const cursorDoc = db.collection(`${prefix}reconciler`).doc('cursor');
  const store: JobsStore = {
    async get(jobId) {
      const snap = await jobs.doc(jobId).get();
      return snap.exists ? jobFrom(snap) : undefined;
    },

    async create(spec, enqueueDueMs, idempotency) {
      const { pipeline, ...fields } = newJobFields(spec, enqueueDueMs);
      const batch = db.batch().create(jobs.doc(spec.id), {
        ...fields,
        ...(pipeline ? { pipelineJson: JSON.stringify(pipeline) } : {}),
        createdAt: FieldValue.serverTimestamp(),
        expireAt: expireAtFor(retentionMs),
      });
      if (idempotency) {
        batch.create(keys.doc(idempotency.keyId), {
          jobId: spec.id,
          bodyHash: idempotency.bodyHash,
          at: FieldValue.serverTimestamp(),
        });
      }
      try {
        await batch.commit();
        return { created: true };
      } catch (err) {
        if (!idempotency || !isAlreadyExists(err)) throw err;
        const existing = await store.findIdempotency(idempotency.keyId);
        if (!existing) throw err;
        return { created: false, existing };
      }
    },

    async findIdempotency(keyId) {
      const snap = await keys.doc(keyId).get();
      return snap.exists ? { jobId: snap.data()!.jobId, bodyHash: snap.data()!.bodyHash } : undefined;
    },

    async markRunning(jobId, version) {
      await jobs
        .doc(jobId)
        .update(
          { status: 'running', startedAt: FieldValue.serverTimestamp() },
          { lastUpdateTime: decodeVersion(version) },
        )
        .catch(ignorePreconditionFailure);
    },

    async setEnqueued(jobId, through, dueMs, ifVersion) {
      const patch = { enqueuedThrough: through, enqueueDueMs: dueMs };
      if (ifVersion === undefined) {
        await jobs.doc(jobId).update(patch);
        return true;
      }
      const takeOver = { ...patch, enqueueHold: FieldValue.delete() };
      return landed(jobs.doc(jobId).update(takeOver, { lastUpdateTime: decodeVersion(ifVersion) }));
    },

    ...createEnqueueHold(db, jobs),

    async setNotice(jobId, notice) {
      await jobs.doc(jobId).update({ notice });
    },

    async setTokenRatio(jobId, ratio) {
      await jobs.doc(jobId).update({ tokenRatio: ratio });
    },

    async addRetry(jobId, retryId) {
      await jobs.doc(jobId).update({ retries: FieldValue.arrayUnion(retryId) });
    },

    async setStaged(jobId, staged) {
      await jobs.doc(jobId).update({ ...staged });
    },

    async stopForBudget(jobId, notice) {
      await jobs.doc(jobId).update({ budgetStopped: true, notice });
    },

    async finish(jobId, version, status, totals, startedAt, callback) {
      const patch = {
        status,
        finishedAt: FieldValue.serverTimestamp(),
        final: totals,
        notice: null,
        ...(startedAt ? {} : { startedAt: FieldValue.serverTimestamp() }),
      };
      return landed(withCallback(jobId, patch, version, callback).commit());
    },

    async cancel(jobId) {
      const ref = jobs.doc(jobId);
      const changed = await db.runTransaction(async (tx) => {
        const fresh = await tx.get(ref);
        if (!fresh.exists) return undefined;
        if (isTerminalJob(fresh.data()!.status)) return false;
        tx.update(ref, {
          status: 'cancelled',
          finishedAt: FieldValue.serverTimestamp(),
          notice: null,
          cancelPending: true,
        });
        return true;
      });
      if (changed === undefined) return undefined;
      const job = await store.get(jobId);
      return job ? { job, changed } : undefined;
    },

    async completeCancel(jobId, totals, version, callback) {
      return landed(withCallback(jobId, { final: totals, cancelPending: false }, version, callback).commit());
    },

    async countReconcile(jobId, what, n = 1) {
      await jobs.doc(jobId).update({ [`reconciled.${what}`]: FieldValue.increment(n) });
    },

    async listExportPending(limit) {
      return (await jobs.where('exportPending', '==', true).limit(limit).get()).docs.map(jobFrom);
    },

    async claimExport(job, nowMs, untilMs) {
      if ((job.exportLeaseUntilMs ?? 0) > nowMs) return false;
      return landed(
        jobs
          .doc(job.id)
          .update({ exportLeaseUntilMs: untilMs }, { lastUpdateTime: decodeVersion(job.version) }),
      );
    },

    async markExported(jobId) {
      await jobs.doc(jobId).update({ exportPending: false });
    },

    async listRecent({ owner, limit, after }) {
      let query = (owner === undefined ? jobs : jobs.where('owner', '==', owner)).orderBy(
        'createdAt',
        'desc',
      );
      if (after !== undefined) {
        const last = await jobs.doc(after).get();
        if (!last.exists) return { jobs: [] };
        query = query.startAfter(last);
      }
      const snap = await query.limit(limit).get();
      const list = snap.docs.map(jobFrom);
      return list.length === limit ? { jobs: list, next: list[list.length - 1]!.id } : { jobs: list };
    },

    async listUnsettled(limit, afterId) {
      // Two small queries on single-field indexes: live jobs, and cancels still sweeping.
      const page = async (q: FirebaseFirestore.Query) => {
        let query = q.orderBy('__name__').limit(limit);
        if (afterId) query = query.startAfter(afterId);
        return (await query.get()).docs.map(jobFrom);
      };
      const [live, cancelling] = await Promise.all([
        page(jobs.where('status', 'in', ['queued', 'running'])),
        page(jobs.where('cancelPending', '==', true)),
      ]);
      return [...live, ...cancelling].sort((a, b) => (a.id < b.id ? -1 : 1)).slice(0, limit);
    },

    async readReconcileCursor() {
      const d = (await cursorDoc.get()).data() ?? {};
      return {
        ...(typeof d.jobsAfter === 'string' ? { jobsAfter: d.jobsAfter } : {}),
        ...(d.overdueAfter ? { overdueAfter: d.overdueAfter as OverdueCursor } : {}),
      };
    },

    async writeReconcileCursor(cursor) {
      await cursorDoc.set({ jobsAfter: cursor.jobsAfter ?? null, overdueAfter: cursor.overdueAfter ?? null });
    },
  };
  return store;
}
