import {
  decideClaim,
  type ItemOutcome,
  type ItemRecord,
  type ItemState,
  type JobRecord,
  type JobView,
  toJobView,
} from '../core/jobs.js';
import { CANCELLED_ERROR } from '../core/results.js';
import type { Totals } from '../core/totals.js';
import type { Logger } from '../platform/logger.js';
import { answerObjectName, type ObjectStore } from '../platform/object-store.js';
import type { BatchStores, Stores } from '../platform/store/index.js';
import type { ItemRef, StoredOutcome } from '../platform/store/items.js';
import type { TaskQueue } from '../platform/task-queue.js';
import { batchViewOf, createJobMaker } from './create.js';
import { createJobFinisher } from './finish.js';
import { createResultReader } from './results.js';

/**
 * The job lifecycle: the one place that knows the rules of a job and its items (create, claim,
 * complete, give up, finish, cancel, view, totals). `ingest`, `worker` and `batch` call it; it keeps
 * the state machine of an item (pending → leased → terminal) and of a job (queued → running →
 * succeeded | cancelled) over the narrow stores, so every path ends in a state.
 */

export interface LifecycleDeps {
  stores: Stores;
  tasks: Pick<TaskQueue, 'enqueueControl' | 'deleteItems'>;
  objects: ObjectStore;
  logger: Logger;
  /** The Batch API path's records (batch jobs show their batches in the view). */
  batch?: BatchStores;
  /** Notifies a job's callback URL once it is terminal. */
  notify: (url: string, job: JobView) => Promise<void>;
  /** A job whose enqueuing made no progress for this long is enqueued again by the reconciler. */
  stallMs: number;
  /**
   * How long after its plan an item's task may still deliver it (`core/due.ts`): a released item is
   * due that long after its new plan, or after now when its task retries it. Absent: released items
   * keep their due time.
   */
  dueWindowMs?: number;
  now?: () => number;
  /** Waits between attempts of an outcome write (tests pass a no-op). */
  sleep?: (ms: number) => Promise<void>;
}

/** What a delivery finds when it tries to take an item. */
export type ClaimResult =
  | { outcome: 'claimed'; item: ItemRecord; job: JobRecord; lease: ItemRef }
  /** The item already has its outcome: a duplicate delivery. */
  | { outcome: 'done'; state: ItemState }
  /** The job was cancelled; the item is now recorded as cancelled. */
  | { outcome: 'cancelled' }
  /** Another delivery holds the item until `untilMs`. */
  | { outcome: 'leased'; untilMs: number }
  | { outcome: 'missing' };

/**
 * Responses larger than this go to the bucket, with a pointer on the item: an item document holds
 * at most 1 MiB, and its request (up to 256 KiB) is already there.
 */
export const INLINE_RESPONSE_MAX_BYTES = 512 * 1024;

/** Whether a serialised response is stored on its item's document (else in the bucket). */
export function fitsInline(responseJson: string): boolean {
  return Buffer.byteLength(responseJson) <= INLINE_RESPONSE_MAX_BYTES;
}

/** Attempts of an outcome write before the error goes up (contention and blips are retried here). */
const SETTLE_ATTEMPTS = 4;

/** Firestore's INVALID_ARGUMENT: how it refuses a document over 1 MiB. */
const INVALID_ARGUMENT = 3;

export type Lifecycle = ReturnType<typeof createLifecycle>;

export function createLifecycle(deps: LifecycleDeps) {
  const { jobs, items, counters } = deps.stores;
  const clock = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  const totals = async (job: JobRecord): Promise<Totals> =>
    job.final ?? (await counters.totals(job.id, job.total, job.counterShards, job.extraCounters));

  /**
   * Runs a write the answer depends on, retrying faults in place: once Gemini has answered, a retry
   * by the queue would call (and bill) it again. A lost precondition is an answer, not a fault.
   */
  const persist = async <T>(
    what: string,
    ref: Pick<ItemRef, 'jobId' | 'itemId'>,
    write: () => Promise<T>,
  ): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        if (attempt >= SETTLE_ATTEMPTS || (err as { code?: number }).code === INVALID_ARGUMENT) throw err;
        deps.logger.warn(
          {
            event: 'item.write_retry',
            what,
            jobId: ref.jobId,
            itemId: ref.itemId,
            attempt,
            err: (err as Error).message,
          },
          `writing the ${what} failed; trying again`,
        );
        await sleep(100 * 2 ** attempt);
      }
    }
  };
  /** Writes an outcome: false when someone else won (the lease was lost). */
  const settle = (ref: ItemRef, outcome: StoredOutcome) =>
    persist('outcome', ref, () => items.settle(ref, outcome));

  const lifecycle = {
    ...createJobMaker(deps, clock),
    ...createResultReader(deps),
    ...createJobFinisher(deps, clock, (jobId): Promise<JobView | undefined> => lifecycle.view(jobId)),
    getJob: (jobId: string) => jobs.get(jobId),

    async view(jobId: string): Promise<JobView | undefined> {
      const job = await jobs.get(jobId);
      if (!job) return undefined;
      const runs = job.mode === 'batch' && deps.batch ? await deps.batch.runs.listForJob(jobId) : undefined;
      // Items a batch sent back to the queues took the realtime path after all.
      const rerouted = runs?.reduce((n, r) => n + r.rerouted, 0) ?? 0;
      const paths = job.paths && {
        realtime: job.paths.realtime + rerouted,
        batch: job.paths.batch - rerouted,
      };
      return toJobView({ ...job, ...(paths ? { paths } : {}) }, await totals(job), runs?.map(batchViewOf));
    },

    /** Jobs newest first (one owner's, or all), as views; see `JobsStore.listRecent`. */
    async listJobs(options: { owner?: string; limit: number; after?: string }) {
      const page = await jobs.listRecent(options);
      const views = await Promise.all(page.jobs.map((j) => lifecycle.view(j.id)));
      return {
        jobs: views.filter((v): v is JobView => v !== undefined),
        ...(page.next ? { next: page.next } : {}),
      };
    },

    /**
     * Hands a stored job to its first enqueue task. A failure is logged, not thrown: the job is
     * stored and the reconciler enqueues it once it has stalled.
     */
    async startEnqueue(jobId: string): Promise<boolean> {
      try {
        await deps.tasks.enqueueControl({ kind: 'enqueue', jobId, from: 0 }, `${jobId}-enqueue-0`);
        return true;
      } catch (err) {
        deps.logger.error(
          { event: 'job.enqueue_deferred', jobId, err: (err as Error).message },
          'job stored but its enqueue task could not be created; the reconciler will start it',
        );
        return false;
      }
    },

    async claim(jobId: string, itemId: string, leaseMs: number): Promise<ClaimResult> {
      const [item, job] = await items.getWithJob(jobId, itemId);
      const now = clock();
      const decision = decideClaim(item, job, now);
      if (decision.kind === 'missing' || !item || !job) return { outcome: 'missing' };
      if (decision.kind === 'done') return { outcome: 'done', state: decision.state };
      if (decision.kind === 'leased') return { outcome: 'leased', untilMs: decision.untilMs };
      const ref: ItemRef = { jobId, itemId, version: item.version, shards: job.counterShards };
      if (decision.kind === 'cancel') {
        await settle(ref, { state: 'cancelled', error: CANCELLED_ERROR });
        return { outcome: 'cancelled' };
      }
      const leased = await items.lease(ref, leaseMs, now);
      // Someone changed the item between our read and our write: another delivery, most likely.
      if (!leased) return { outcome: 'leased', untilMs: now + 1000 };
      // First claim marks the job running; losing that race just means another claim did it.
      if (job.status === 'queued') await jobs.markRunning(jobId, job.version);
      return { outcome: 'claimed', item, job, lease: { ...ref, version: leased.version } };
    },

    /** A batch job's first batch exists upstream: the job is running. */
    async markRunning(jobId: string): Promise<void> {
      const job = await jobs.get(jobId);
      if (job?.status === 'queued') await jobs.markRunning(jobId, job.version);
    },

    /**
     * Gives the item back for another delivery; `plannedMs` records a new plan (and its new task).
     * Either way a task will come for it again, so its due time moves on (`ItemRecord.dueByMs`).
     */
    release: (lease: ItemRef, plannedMs?: number) =>
      items.release(
        lease,
        plannedMs,
        deps.dueWindowMs === undefined ? undefined : (plannedMs ?? clock()) + deps.dueWindowMs,
      ),

    /**
     * Records the outcome of a leased item, exactly once. A response too big for the item's document
     * is stored in the bucket first, and the item points at it. False when the lease was lost.
     */
    async complete(lease: ItemRef, outcome: ItemOutcome): Promise<boolean> {
      if (outcome.state !== 'succeeded') return settle(lease, outcome);
      const responseJson = JSON.stringify(outcome.response);
      const offload = async () => {
        const { response, ...rest } = outcome;
        return settle(lease, { ...rest, responseObject: await lifecycle.offloadAnswer(lease, response) });
      };
      if (!fitsInline(responseJson)) return offload();
      try {
        return await settle(lease, { ...outcome, responseJson });
      } catch (err) {
        // The request and the response together were still too big for one document.
        if ((err as { code?: number }).code === INVALID_ARGUMENT) return offload();
        throw err;
      }
    },

    /**
     * Stores a response too big for its item's document in the bucket (the write retried in place:
     * the answer is paid for); the object's name, for the item to point at.
     */
    async offloadAnswer(item: Pick<ItemRef, 'jobId' | 'itemId'>, response: unknown): Promise<string> {
      const name = answerObjectName(item.jobId, item.itemId);
      await persist('answer object', item, () => deps.objects.putJson(name, response));
      return name;
    },
  };

  return lifecycle;
}
