import { randomUUID } from 'node:crypto';
import {
  AggregateField,
  FieldPath,
  FieldValue,
  type Firestore,
  type QueryDocumentSnapshot,
  Timestamp,
} from '@google-cloud/firestore';
import type {
  ItemError,
  ItemState,
  JobCounts,
  JobMode,
  JobSpec,
  JobStatus,
  NewItem,
  Usage,
} from '../core/jobs.js';
import { isTerminalJob, pendingOf } from '../core/jobs.js';
import type { ModelQuota } from '../core/quotas.js';
import { type DispatchLedger, type JobPlan, releaseJobPlan, reserveForJob } from '../core/rate.js';
import { CANCELLED_ERROR } from '../core/results.js';

/** A job as clients see it (`GET /jobs/{id}`). */
export interface JobView {
  id: string;
  status: JobStatus;
  mode: JobMode;
  model: string;
  source: string;
  counts: JobCounts;
  usage: Usage;
  costUsd: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Why the job is waiting, e.g. the model's daily quota is spent. */
  notice: string | null;
}

/** The stored job document. */
export interface JobRecord extends JobSpec {
  counterShards: number;
  status: JobStatus;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Items [0, enqueuedThrough) have their task. Enqueuing resumes from here. */
  enqueuedThrough: number;
  notice: string | null;
  final: { counts: JobCounts; usage: Usage; costUsd: number } | null;
}

/** A stored item with its outcome. */
export interface ItemRecord extends NewItem {
  /** When a delivery found the item late and planned it again: the new plan (epoch ms) of its new task. */
  plannedMs: number | null;
  state: ItemState;
  response?: unknown;
  error?: ItemError;
  usage?: Usage;
  costUsd?: number;
  attempts: number;
  finishedAt: Date | null;
  /** Commit time of the outcome in microseconds: the order of `GET /jobs/{id}/events`. */
  finishedAtMicros: number | null;
}

/** The client's view of a job from its record and its counts. */
export function toJobView(
  job: JobRecord,
  agg: { counts: JobCounts; usage: Usage; costUsd: number },
): JobView {
  return {
    id: job.id,
    status: job.status,
    mode: job.mode,
    model: job.model,
    source: job.source,
    counts: agg.counts,
    usage: agg.usage,
    costUsd: agg.costUsd,
    createdAt: job.createdAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
    notice: job.notice,
  };
}

/** The outcome a worker records for an item. */
export type ItemOutcome =
  | { state: 'succeeded'; response: unknown; usage: Usage; costUsd: number }
  | { state: 'failed'; error: ItemError; usage?: Usage; costUsd?: number };

export type ClaimResult =
  | { outcome: 'claimed'; item: ItemRecord; job: JobRecord; leaseId: string }
  /** The item already has its outcome: a duplicate delivery. */
  | { outcome: 'done'; state: ItemState }
  /** The job was cancelled; the item is now recorded as cancelled. */
  | { outcome: 'cancelled' }
  /** Another delivery holds the item; come back after the lease. */
  | { outcome: 'leased'; retryAfterMs: number }
  | { outcome: 'missing' };

/** Narrow interface over the jobs database; handlers depend on this, not on Firestore. */
export interface JobStore {
  createJob(spec: JobSpec, items: NewItem[]): Promise<void>;
  getJob(jobId: string): Promise<JobRecord | undefined>;
  viewJob(jobId: string): Promise<JobView | undefined>;
  listItems(jobId: string, options: { afterId?: string; limit: number }): Promise<ItemRecord[]>;
  /** Finished items ordered by finish time then id, strictly after `cursor`. */
  listFinished(jobId: string, cursor: FinishCursor | undefined, limit: number): Promise<ItemRecord[]>;
  claimItem(jobId: string, itemId: string, leaseMs: number): Promise<ClaimResult>;
  /** Gives the item up for another delivery; `plannedMs` records a new plan (and its new task). */
  releaseItem(jobId: string, itemId: string, leaseId: string, plannedMs?: number): Promise<void>;
  completeItem(jobId: string, itemId: string, leaseId: string, outcome: ItemOutcome): Promise<boolean>;
  hasPending(jobId: string): Promise<boolean>;
  /** Turns the job terminal exactly once; returns the final view only to the caller that did it. */
  finishJob(jobId: string, status: JobStatus): Promise<JobView | undefined>;
  /**
   * Cancels the job and ends every pending item as cancelled. `changed` is true only for the call that
   * turned the job terminal. Undefined for an unknown job.
   */
  cancelJob(jobId: string): Promise<{ view: JobView; changed: boolean } | undefined>;
  setEnqueued(jobId: string, through: number): Promise<void>;
  setNotice(jobId: string, notice: string | null): Promise<void>;
  /** The model's dispatch ledger as it stands (a plain read: no lock). */
  readLedger(model: string): Promise<DispatchLedger>;
  /**
   * Reserves dispatch slots (requests and input tokens) for items of one model on its shared ledger
   * and returns each item's planned send time. `jobId` records them in the job's plan (a cancel gives
   * back what is still ahead); `release` first takes back one earlier reservation of that job.
   * With `untilMs`, only the items that fit before it are planned: the result may be shorter; for a
   * job that is no longer running, nothing is.
   */
  reserveDispatches(
    model: string,
    tokens: number[],
    quota: ModelQuota,
    headroom: number,
    options?: { jobId?: string; release?: { atMs: number; tokens: number }; untilMs?: number },
  ): Promise<number[]>;
  setQuotaPause(model: string, untilMs: number, reason: string): Promise<void>;
  listQuotaPauses(): Promise<Array<{ model: string; untilMs: number; reason: string }>>;
  clearQuotaPause(model: string): Promise<void>;
}

export interface FinishCursor {
  finishedAtMicros: number;
  itemId: string;
}

/** Counter shards of a job stored before the count was part of the job (and the default). */
const DEFAULT_COUNTER_SHARDS = 16;

const toDate = (v: unknown): Date | null => (v instanceof Timestamp ? v.toDate() : null);
const toMicros = (t: Timestamp) => t.seconds * 1_000_000 + Math.floor(t.nanoseconds / 1000);

function itemFrom(snap: QueryDocumentSnapshot | FirebaseFirestore.DocumentSnapshot): ItemRecord {
  const d = snap.data() ?? {};
  const item: ItemRecord = {
    id: snap.id,
    index: d.index,
    key: d.key,
    request: JSON.parse(d.requestJson),
    estimatedTokens: d.estimatedTokens ?? 0,
    plannedMs: d.plannedMs ?? null,
    state: d.state,
    attempts: d.attempts ?? 0,
    finishedAt: toDate(d.finishedAt),
    finishedAtMicros: d.finishedAt instanceof Timestamp ? toMicros(d.finishedAt) : null,
  };
  if (d.media) item.media = d.media;
  if (d.responseJson) item.response = JSON.parse(d.responseJson);
  if (d.error) item.error = d.error;
  if (d.usage) item.usage = d.usage;
  if (typeof d.costUsd === 'number') item.costUsd = d.costUsd;
  return item;
}

function jobFrom(snap: FirebaseFirestore.DocumentSnapshot): JobRecord {
  const d = snap.data() ?? {};
  return {
    id: snap.id,
    model: d.model,
    mode: d.mode,
    total: d.total,
    source: d.source,
    ...(d.callbackUrl ? { callbackUrl: d.callbackUrl } : {}),
    counterShards: d.counterShards ?? DEFAULT_COUNTER_SHARDS,
    status: d.status,
    createdAt: toDate(d.createdAt) ?? new Date(0),
    startedAt: toDate(d.startedAt),
    finishedAt: toDate(d.finishedAt),
    enqueuedThrough: d.enqueuedThrough ?? 0,
    notice: d.notice ?? null,
    final: d.final ?? null,
  };
}

/**
 * Firestore-backed job store. Layout: `jobs/{jobId}` and `jobs/{jobId}/items/{itemId}` (item ids are
 * zero-padded indexes), `ledgers/{model}` for the dispatch plan (requests and tokens per second)
 * with each job's share in `ledgers/{model}/jobs/{jobId}`, `quotaPauses/{model}`.
 *
 * Counts and usage live in `jobs/{jobId}/counters/{0..15}`: every item outcome increments one random
 * shard in the same commit as the item's own update (guarded by the claim's precondition), so each
 * item is counted exactly once and no document takes more than a share of the write rate. A job's
 * counts are the sum of its shards: no per-item query, which the Firestore emulator would serve by
 * scanning. Requests and responses are stored as JSON strings (Firestore forbids nested arrays).
 */
export function createJobStore(db: Firestore, options: { collectionPrefix?: string } = {}): JobStore {
  const prefix = options.collectionPrefix ?? '';
  const jobs = db.collection(`${prefix}jobs`);
  const items = (jobId: string) => jobs.doc(jobId).collection('items');
  const ledgers = db.collection(`${prefix}ledgers`);
  /** `ledgers/{model}/jobs/{jobId}`: what each job reserved on the model's ledger. */
  const jobPlans = (model: string) => ledgers.doc(model).collection('jobs');

  /** Gives back a cancelled job's reservations for the seconds still ahead. */
  const releasePlanOf = async (jobId: string, model: string) => {
    const ref = ledgers.doc(model);
    const planRef = jobPlans(model).doc(jobId);
    await db.runTransaction(async (tx) => {
      const [ledgerSnap, planSnap] = await tx.getAll(ref, planRef);
      if (!planSnap?.exists) return;
      const ledger = releaseJobPlan(
        ledgerFrom(ledgerSnap!),
        JSON.parse(planSnap.data()!.planJson),
        Date.now(),
      );
      tx.set(ref, ledgerData(ledger));
      tx.delete(planRef);
    });
  };
  const pauses = db.collection(`${prefix}quotaPauses`);
  const counters = (jobId: string) => jobs.doc(jobId).collection('counters');
  const shardRefs = (jobId: string, shards: number) =>
    Array.from({ length: shards }, (_, n) => counters(jobId).doc(String(n)));

  /** An outcome's contribution to the job's counters, written in the same commit as the item. */
  const increments = (outcome: { state: ItemState; usage?: Usage; costUsd?: number }) => ({
    [outcome.state]: FieldValue.increment(1),
    promptTokens: FieldValue.increment(outcome.usage?.promptTokens ?? 0),
    outputTokens: FieldValue.increment(outcome.usage?.outputTokens ?? 0),
    costUsd: FieldValue.increment(outcome.costUsd ?? 0),
  });
  const randomShard = (jobId: string, shards: number) =>
    counters(jobId).doc(String(Math.floor(Math.random() * shards)));

  function sumShards(snaps: FirebaseFirestore.DocumentSnapshot[], total: number) {
    let succeeded = 0;
    let failed = 0;
    let cancelled = 0;
    let promptTokens = 0;
    let outputTokens = 0;
    let cost = 0;
    for (const snap of snaps) {
      const d = snap.data();
      if (!d) continue;
      succeeded += d.succeeded ?? 0;
      failed += d.failed ?? 0;
      cancelled += d.cancelled ?? 0;
      promptTokens += d.promptTokens ?? 0;
      outputTokens += d.outputTokens ?? 0;
      cost += d.costUsd ?? 0;
    }
    return {
      counts: {
        total,
        succeeded,
        failed,
        cancelled,
        pending: pendingOf({ total, succeeded, failed, cancelled }),
      },
      usage: { promptTokens, outputTokens },
      costUsd: Math.round(cost * 1e9) / 1e9,
    };
  }

  /** Counts from the sharded counters: one read of every shard, no query. */
  async function aggregate(jobId: string, total: number, shards: number) {
    return sumShards(await db.getAll(...shardRefs(jobId, shards)), total);
  }

  /** Exact counts by aggregation queries: used once, when a cancel makes the job terminal. */
  async function countByQuery(
    jobId: string,
    total: number,
  ): Promise<{ counts: JobCounts; usage: Usage; costUsd: number }> {
    const col = items(jobId);
    const [succeeded, failed, cancelled, sums] = await Promise.all([
      col.where('state', '==', 'succeeded').count().get(),
      col.where('state', '==', 'failed').count().get(),
      col.where('state', '==', 'cancelled').count().get(),
      col
        .aggregate({
          promptTokens: AggregateField.sum('usage.promptTokens'),
          outputTokens: AggregateField.sum('usage.outputTokens'),
          costUsd: AggregateField.sum('costUsd'),
        })
        .get(),
    ]);
    const s = succeeded.data().count;
    const f = failed.data().count;
    const c = cancelled.data().count;
    const sum = sums.data();
    return {
      counts: {
        total,
        succeeded: s,
        failed: f,
        cancelled: c,
        pending: pendingOf({ total, succeeded: s, failed: f, cancelled: c }),
      },
      usage: { promptTokens: sum.promptTokens ?? 0, outputTokens: sum.outputTokens ?? 0 },
      costUsd: Math.round((sum.costUsd ?? 0) * 1e9) / 1e9,
    };
  }

  async function viewOf(job: JobRecord): Promise<JobView> {
    return toJobView(job, job.final ?? (await aggregate(job.id, job.total, job.counterShards)));
  }

  const store: JobStore = {
    async createJob(spec, newItems) {
      // Items first, the job document last: a job that is visible is complete and durable.
      // The default ramp (500 ops/s, +50% every 5 min) would cap ingest at 500 items/s; items go
      // to a fresh per-job subcollection, so a faster start is safe.
      const writer = db.bulkWriter({ throttling: { initialOpsPerSecond: 5000, maxOpsPerSecond: 10000 } });
      let failure: unknown;
      writer.onWriteError((err) => {
        if (err.failedAttempts < 5) return true;
        failure = err;
        return false;
      });
      const col = items(spec.id);
      for (const item of newItems) {
        void writer.set(col.doc(item.id), {
          index: item.index,
          key: item.key,
          requestJson: JSON.stringify(item.request),
          ...(item.media ? { media: item.media } : {}),
          estimatedTokens: item.estimatedTokens,
          state: 'pending',
          attempts: 0,
        });
      }
      await writer.close();
      if (failure) throw failure;
      await jobs.doc(spec.id).set({
        ...spec,
        status: 'queued',
        createdAt: FieldValue.serverTimestamp(),
        startedAt: null,
        finishedAt: null,
        enqueuedThrough: 0,
        notice: null,
        final: null,
      });
    },

    async getJob(jobId) {
      const snap = await jobs.doc(jobId).get();
      return snap.exists ? jobFrom(snap) : undefined;
    },

    async viewJob(jobId) {
      const job = await store.getJob(jobId);
      return job ? viewOf(job) : undefined;
    },

    async listItems(jobId, { afterId, limit }) {
      let q = items(jobId).orderBy(FieldPath.documentId()).limit(limit);
      if (afterId) q = q.startAfter(afterId);
      const snap = await q.get();
      return snap.docs.map(itemFrom);
    },

    async listFinished(jobId, cursor, limit) {
      let q = items(jobId).orderBy('finishedAt').orderBy(FieldPath.documentId()).limit(limit);
      if (cursor) {
        const at = new Timestamp(
          Math.floor(cursor.finishedAtMicros / 1_000_000),
          (cursor.finishedAtMicros % 1_000_000) * 1000,
        );
        q = q.startAfter(at, cursor.itemId);
      }
      const snap = await q.get();
      return snap.docs.map(itemFrom);
    },

    async claimItem(jobId, itemId, leaseMs) {
      const ref = items(jobId).doc(itemId);
      const jobRef = jobs.doc(jobId);
      const [itemSnap, jobSnap] = await db.getAll(ref, jobRef);
      if (!itemSnap?.exists || !jobSnap?.exists) return { outcome: 'missing' };
      const d = itemSnap.data()!;
      if (d.state !== 'pending') return { outcome: 'done', state: d.state };
      const job = jobFrom(jobSnap);
      const now = Date.now();
      if (job.status === 'cancelled') {
        await db
          .batch()
          .update(
            ref,
            {
              state: 'cancelled',
              error: CANCELLED_ERROR,
              finishedAt: FieldValue.serverTimestamp(),
              lease: null,
            },
            { lastUpdateTime: itemSnap.updateTime! },
          )
          .set(randomShard(jobId, job.counterShards), increments({ state: 'cancelled' }), {
            merge: true,
          })
          .commit()
          .catch(ignorePreconditionFailure);
        return { outcome: 'cancelled' };
      }
      if (d.lease && d.lease.untilMs > now) return { outcome: 'leased', retryAfterMs: d.lease.untilMs - now };
      const leaseId = randomUUID();
      let written: FirebaseFirestore.WriteResult;
      try {
        // Optimistic claim: only if nobody touched the item since we read it.
        written = await ref.update(
          { lease: { id: leaseId, untilMs: now + leaseMs }, attempts: FieldValue.increment(1) },
          { lastUpdateTime: itemSnap.updateTime! },
        );
      } catch (err) {
        if (isPreconditionFailure(err)) return { outcome: 'leased', retryAfterMs: 1000 };
        throw err;
      }
      if (job.status === 'queued') {
        // First claim marks the job running; a precondition instead of a transaction keeps the
        // hot path free of lock waits (losing the race just means another claim did it).
        await jobRef
          .update(
            { status: 'running', startedAt: FieldValue.serverTimestamp() },
            { lastUpdateTime: jobSnap.updateTime! },
          )
          .catch(ignorePreconditionFailure);
      }
      return {
        outcome: 'claimed',
        item: itemFrom(itemSnap),
        job,
        leaseId: encodeLease(leaseId, written.writeTime, job.counterShards),
      };
    },

    async releaseItem(jobId, itemId, leaseId, plannedMs) {
      await items(jobId)
        .doc(itemId)
        .update(plannedMs === undefined ? { lease: null } : { lease: null, plannedMs }, {
          lastUpdateTime: decodeLease(leaseId).version,
        })
        .catch(ignorePreconditionFailure);
    },

    async completeItem(jobId, itemId, leaseId, outcome) {
      const lease = decodeLease(leaseId);
      const patch: Record<string, unknown> = {
        state: outcome.state,
        finishedAt: FieldValue.serverTimestamp(),
        lease: null,
      };
      if (outcome.state === 'succeeded') patch.responseJson = JSON.stringify(outcome.response);
      else patch.error = outcome.error;
      if (outcome.usage) patch.usage = outcome.usage;
      if (outcome.costUsd !== undefined) patch.costUsd = outcome.costUsd;
      try {
        // Exactly once: the write succeeds only if the item is exactly as our claim left it (no
        // other delivery took it over after our lease ran out, no cancel swept it). No read needed.
        // The counters change in the same commit, so they count each item exactly once.
        await db
          .batch()
          .update(items(jobId).doc(itemId), patch, { lastUpdateTime: lease.version })
          .set(randomShard(jobId, lease.shards), increments(outcome), { merge: true })
          .commit();
        return true;
      } catch (err) {
        if (isPreconditionFailure(err)) return false;
        throw err;
      }
    },

    async hasPending(jobId) {
      const job = await store.getJob(jobId);
      if (!job) return false;
      return (await aggregate(jobId, job.total, job.counterShards)).counts.pending > 0;
    },

    async finishJob(jobId, status) {
      // A precondition on the job's update time, not a transaction: when the last items and the
      // finish watcher all try at once, transactions wait on each other's locks for seconds; this way
      // exactly one write lands and the others learn so at once.
      const ref = jobs.doc(jobId);
      for (let attempt = 0; attempt < 5; attempt++) {
        const snap = await ref.get();
        if (!snap.exists || isTerminalJob(snap.data()!.status)) return undefined;
        const job = jobFrom(snap);
        const agg = await aggregate(jobId, job.total, job.counterShards);
        try {
          await ref.update(
            {
              status,
              finishedAt: FieldValue.serverTimestamp(),
              final: agg,
              notice: null,
              ...(job.startedAt ? {} : { startedAt: FieldValue.serverTimestamp() }),
            },
            { lastUpdateTime: snap.updateTime! },
          );
        } catch (err) {
          // Someone else wrote the job meanwhile: look again (it may be finished now).
          if (isPreconditionFailure(err)) continue;
          throw err;
        }
        // Its reservations are all behind it now.
        await jobPlans(job.model).doc(jobId).delete();
        return store.viewJob(jobId);
      }
      throw new Error(`job ${jobId} kept changing while it was being finished; try again`);
    },

    async cancelJob(jobId) {
      const ref = jobs.doc(jobId);
      // The model of the job this call turned cancelled; false when it was terminal already.
      const turned = await db.runTransaction(async (tx) => {
        const fresh = await tx.get(ref);
        if (!fresh.exists) return undefined;
        if (isTerminalJob(fresh.data()!.status)) return false;
        tx.update(ref, { status: 'cancelled', finishedAt: FieldValue.serverTimestamp(), notice: null });
        return fresh.data()!.model as string;
      });
      if (turned === undefined) return undefined;
      if (turned) {
        await releasePlanOf(jobId, turned);
        // Sweep pending items; a precondition per item keeps a result that lands meanwhile.
        const writer = db.bulkWriter();
        writer.onWriteError(() => false);
        let last: QueryDocumentSnapshot | undefined;
        for (;;) {
          let q = items(jobId).where('state', '==', 'pending').orderBy(FieldPath.documentId()).limit(500);
          if (last) q = q.startAfter(last);
          const page = await q.get();
          for (const doc of page.docs) {
            void writer
              .update(
                doc.ref,
                {
                  state: 'cancelled',
                  error: CANCELLED_ERROR,
                  finishedAt: FieldValue.serverTimestamp(),
                  lease: null,
                },
                { lastUpdateTime: doc.updateTime },
              )
              .catch(() => undefined);
          }
          if (page.size < 500) break;
          last = page.docs[page.docs.length - 1];
        }
        await writer.close();
        const job = await store.getJob(jobId);
        if (job) {
          // The sweep does not touch the counters: count the final states once, exactly.
          const agg = await countByQuery(jobId, job.total);
          await ref.update({ final: agg });
        }
      }
      const view = await store.viewJob(jobId);
      return view ? { view, changed: turned !== false } : undefined;
    },

    async setEnqueued(jobId, through) {
      await jobs.doc(jobId).update({ enqueuedThrough: through });
    },

    async setNotice(jobId, notice) {
      await jobs.doc(jobId).update({ notice });
    },

    async readLedger(model) {
      return ledgerFrom(await ledgers.doc(model).get());
    },

    async reserveDispatches(model, tokens, quota, headroom, options = {}) {
      const ref = ledgers.doc(model);
      const planRef = options.jobId ? jobPlans(model).doc(options.jobId) : undefined;
      const jobRef = options.jobId ? jobs.doc(options.jobId) : undefined;
      return db.runTransaction(async (tx) => {
        const [ledgerSnap, planSnap, jobSnap] = await tx.getAll(
          ref,
          ...(planRef && jobRef ? [planRef, jobRef] : []),
        );
        // A job cancelled meanwhile reserves nothing: its cancel has already given its slots back.
        if (jobSnap && (!jobSnap.exists || isTerminalJob(jobSnap.data()!.status))) return [];
        const stored = planSnap?.exists ? (JSON.parse(planSnap.data()!.planJson) as JobPlan) : {};
        const planned = reserveForJob(
          ledgerFrom(ledgerSnap!),
          planRef ? stored : undefined,
          tokens,
          Date.now(),
          quota,
          headroom,
          options,
        );
        tx.set(ref, ledgerData(planned.ledger));
        if (planRef && planned.jobPlan) tx.set(planRef, { planJson: JSON.stringify(planned.jobPlan) });
        return planned.scheduleMs;
      });
    },

    async setQuotaPause(model, untilMs, reason) {
      await pauses.doc(model).set({ untilMs, reason, at: FieldValue.serverTimestamp() });
    },

    async listQuotaPauses() {
      const snap = await pauses.get();
      return snap.docs.map((d) => ({ model: d.id, untilMs: d.data().untilMs, reason: d.data().reason }));
    },

    async clearQuotaPause(model) {
      await pauses.doc(model).delete();
    },
  };
  return store;
}

/** A ledger as stored: JSON strings, not maps, as thousands of per-second keys must not be indexed. */
function ledgerData(ledger: DispatchLedger) {
  return {
    bucketsJson: JSON.stringify(ledger.buckets),
    requestsJson: JSON.stringify(ledger.requests ?? {}),
    updatedAt: FieldValue.serverTimestamp(),
  };
}

function ledgerFrom(snap: FirebaseFirestore.DocumentSnapshot): DispatchLedger {
  const parse = (field: string) =>
    JSON.parse((snap.exists && snap.data()![field]) || '{}') as Record<string, number>;
  return { buckets: parse('bucketsJson'), requests: parse('requestsJson') };
}

/** The cursor of a finished item, for `Last-Event-ID`. */
export function finishCursorOf(item: ItemRecord): FinishCursor | undefined {
  return item.finishedAtMicros === null
    ? undefined
    : { finishedAtMicros: item.finishedAtMicros, itemId: item.id };
}

/**
 * The lease handed to a worker is opaque to it: the lease id plus the item's update time after the
 * claim, which is the precondition of every later write by that worker.
 */
function encodeLease(id: string, version: Timestamp, shards: number): string {
  return `${id}@${version.seconds}.${String(version.nanoseconds).padStart(9, '0')}#${shards}`;
}

function decodeLease(lease: string): { version: Timestamp; shards: number } {
  const m = /@(\d+)\.(\d{9})#(\d+)$/.exec(lease);
  if (!m) throw new Error('not a lease handed out by claimItem');
  return { version: new Timestamp(Number(m[1]), Number(m[2])), shards: Number(m[3]) };
}

function isPreconditionFailure(err: unknown): boolean {
  const code = (err as { code?: number }).code;
  // 9 FAILED_PRECONDITION (lastUpdateTime mismatch), 5 NOT_FOUND, 10 ABORTED.
  return code === 9 || code === 10;
}

function ignorePreconditionFailure(err: unknown): void {
  if (!isPreconditionFailure(err)) throw err;
}
