import { sleep as wait } from '../api/sleep.js';
import { decideClaim } from '../core/claim.js';
import type { ItemError, ItemOutcome, ItemRecord, ItemState, JobRecord, JobView } from '../core/jobs.js';
import { CANCELLED_ERROR } from '../core/results.js';
import { retry } from '../core/retry.js';
import type { Logger } from '../platform/logger.js';
import type { ObjectStore } from '../platform/object-store.js';
import type { BatchApiStores, Stores } from '../platform/store/index.js';
import type { ItemRef, StoredOutcome } from '../platform/store/items.js';
import type { TaskQueue } from '../platform/task-queue.js';
import { createBatchOutcomes } from './batch-outcomes.js';
import { createBudgetGate } from './budget.js';
import type { CallbackPolicy } from './callbacks.js';
import { createJobMaker } from './create.js';
import { createJobFinisher } from './finish.js';
import { createJobViews } from './job-views.js';
import {
  createPaidAnswers,
  fitsInline,
  INVALID_ARGUMENT,
  type Lease,
  type ParkedAnswer,
  type Persist,
} from './paid-answer.js';
import { createPipelines } from './pipelines.js';
import { createRepairDrafts } from './repair-drafts.js';
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
  batch?: BatchApiStores;
  /**
   * POSTs a job's view to its callback URL as the event `event.id` (its `webhook-id`), signed with
   * the key of `event.owner` (the outbox's attempts, see callbacks.ts); throws on failure, with
   * `retryable: false` when another attempt cannot fare better.
   */
  notify: (url: string, job: JobView, event: { id: string; owner?: string }) => Promise<void>;
  /** How callbacks are retried; `DEFAULT_CALLBACK_POLICY` (callbacks.ts) for what is not given. */
  callbackPolicy?: Partial<CallbackPolicy>;
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

export { AnswerParkedError, fitsInline, INLINE_RESPONSE_MAX_BYTES } from './paid-answer.js';
export type { Lease, ParkedAnswer };

/** What a delivery finds when it tries to take an item. */
export type ClaimResult =
  | {
      outcome: 'claimed';
      item: ItemRecord;
      job: JobRecord;
      lease: Lease;
      /** An answer an earlier delivery paid for and parked: record it, do not call Gemini. */
      parked?: ParkedAnswer;
    }
  /** The item already has its outcome: a duplicate delivery. */
  | { outcome: 'done'; state: ItemState }
  /** The job was cancelled; the item is now recorded as cancelled. */
  | { outcome: 'cancelled' }
  /** Another delivery holds the item until `untilMs`. */
  | { outcome: 'leased'; untilMs: number }
  | { outcome: 'missing' };

/**
 * Attempts of a write before the error goes up (contention and blips are retried here), when no
 * lease end says how long to go on.
 */
const SETTLE_ATTEMPTS = 4;

/** Waits between attempts of a write: 200 ms, doubling, at most 5 s (a lease's end bounds the whole). */
const WRITE_BACKOFF = { baseMs: 200, maxMs: 5_000 };

export type Lifecycle = ReturnType<typeof createLifecycle>;

export function createLifecycle(deps: LifecycleDeps) {
  const { jobs, items, counters } = deps.stores;
  const clock = deps.now ?? Date.now;
  const sleep = deps.sleep ?? wait;

  /**
   * Runs a write the answer depends on, retrying faults in place: once Gemini has answered, a retry
   * by the queue would call (and bill) it again. With `untilMs` (a paid answer's lease, less the time
   * to park it) attempts go on, backing off, while the next would start before it; else a few. A
   * lost precondition is an answer, not a fault; a document too big is no fault a retry mends.
   */
  const persist: Persist = (what, ref, write, untilMs) =>
    retry(write, {
      backoff: WRITE_BACKOFF,
      ...(untilMs === undefined ? { attempts: SETTLE_ATTEMPTS } : { deadlineMs: untilMs }),
      retryable: (err) => (err as { code?: number }).code !== INVALID_ARGUMENT,
      sleep,
      now: clock,
      onRetry: (err, attempt) =>
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
        ),
    });
  /** Writes an outcome: false when someone else won (the lease was lost). */
  const settle = (ref: ItemRef, outcome: StoredOutcome, untilMs?: number) =>
    persist('outcome', ref, () => items.settle(ref, outcome), untilMs);
  const answers = createPaidAnswers({ objects: deps.objects, logger: deps.logger, persist, settle });
  /** The Batch API path's item outcomes (settle, send back, part counts), when it has its stores. */
  const batchOutcomes =
    deps.batch &&
    createBatchOutcomes({
      items: deps.batch.items,
      counters: deps.stores.counters,
      tasks: deps.tasks,
      fitsInline,
      offloadAnswer: (item, response) => answers.offload(item, response),
      stallMs: deps.stallMs,
      unitsSettled: (jobId, itemIds, log) => pipelines.pipeline.unitsSettled(jobId, itemIds, log),
      now: clock,
    });

  const finisher = createJobFinisher(
    deps,
    clock,
    (jobId): Promise<JobView | undefined> => lifecycle.view(jobId),
  );
  const pipelines = createPipelines(deps, clock, { settle, finisher });
  const lifecycle = {
    ...createJobMaker(deps, clock),
    ...createResultReader(deps),
    ...finisher,
    /** Pipelines (a job's `steps`): their unit jobs, and how an item moves through its steps. */
    pipeline: pipelines.pipeline,
    /** Cancels the job (./finish.ts); a pipeline job's unit jobs are cancelled with it. */
    cancel: pipelines.cancel,
    ...createRepairDrafts({ objects: deps.objects, logger: deps.logger, persist }),
    getJob: (jobId: string) => jobs.get(jobId),
    /** Takes or keeps the job's enqueuing for one delivery (`JobsStore.holdEnqueue`) for `forMs`. */
    holdEnqueue: (jobId: string, holder: string, forMs: number) =>
      jobs.holdEnqueue(jobId, holder, clock(), clock() + forMs),
    releaseEnqueue: (jobId: string, holder: string) => jobs.releaseEnqueue(jobId, holder),
    batchOutcomes,
    /** Jobs' budgets (`maxCostUsd`) as this instance keeps them (budget.ts). */
    budget: createBudgetGate({ stores: deps.stores, now: clock }),
    /** Ends a leased item `cancelled` with `error`, unsent (its job's budget is reached); false when the lease was lost. */
    cancelItem: (lease: ItemRef, error: ItemError) => settle(lease, { state: 'cancelled', error }),

    /** Jobs as clients see them: `view`, `listJobs` (./job-views.ts). */
    ...createJobViews(deps, {
      callbackView: finisher.callbackView,
      stepViews: (job) => pipelines.pipeline.stepViews(job),
      runJobIds: (job) => pipelines.pipeline.runJobIds(job),
    }),

    /**
     * Counts a 429 of the job's calls by the quotaId it named, for the job view. Best effort: the
     * count is a report, and a failed write must not change what happens to the item.
     */
    async countQuota429(jobId: string, model: string, quotaId: string, log: Logger): Promise<void> {
      await counters
        .countQuota429(jobId, model, quotaId)
        .catch((err: Error) =>
          log.warn({ event: 'quota.count_failed', err: err.message }, 'could not count a 429'),
        );
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
      // Only an item leased before can have an answer parked by that delivery: a first delivery (the
      // happy path) reads no bucket. Read before the lease, so a failed read leaves the item free.
      const parked = item.attempts > 0 ? await answers.find(jobId, itemId) : undefined;
      const leased = await items.lease(ref, leaseMs, now);
      // Someone changed the item between our read and our write: another delivery, most likely.
      if (!leased) return { outcome: 'leased', untilMs: now + 1000 };
      // First claim marks the job running; losing that race just means another claim did it.
      if (job.status === 'queued') await jobs.markRunning(jobId, job.version);
      const lease: Lease = { ...ref, version: leased.version, untilMs: now + leaseMs };
      return { outcome: 'claimed', item, job, lease, ...(parked ? { parked } : {}) };
    },

    /**
     * Extends a delivery's lease to `leaseMs` from now, while it still works (slow media, a
     * replanning) and before it calls Gemini; undefined when the lease was lost meanwhile (the
     * delivery must stop: another one owns the item, or it has ended).
     */
    async renew(lease: Lease, leaseMs: number): Promise<Lease | undefined> {
      const now = clock();
      const renewed = await persist('lease', lease, () => items.renew(lease, leaseMs, now));
      return renewed && { ...lease, version: renewed.version, untilMs: now + leaseMs };
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
     * is stored in the bucket first, and the item points at it. False when the lease was lost. A
     * paid answer's write is retried until the lease's end; then the answer is parked and
     * `AnswerParkedError` thrown (see `paid-answer.ts`).
     */
    async complete(lease: ItemRef & { untilMs?: number }, outcome: ItemOutcome): Promise<boolean> {
      if (outcome.state !== 'succeeded') return settle(lease, outcome);
      return answers.record(lease, outcome);
    },

    /** Records an answer an earlier delivery parked (`ClaimResult.parked`); false when the lease was lost. */
    recordParked: (lease: Lease, answer: ParkedAnswer): Promise<boolean> =>
      answers.recordParked(lease, answer),

    /**
     * Ends an item no delivery could finish (the reconciler, after its last round): with the answer
     * an earlier delivery paid for and parked, when there is one — a paid answer is never thrown
     * away — else failed with `error`. Undefined when the item changed meanwhile (someone else won).
     */
    async giveUp(
      ref: ItemRef,
      item: Pick<ItemRecord, 'attempts'>,
      error: ItemError,
    ): Promise<'recovered' | 'failed' | undefined> {
      const parked = item.attempts > 0 ? await answers.find(ref.jobId, ref.itemId) : undefined;
      if (parked) return (await answers.recordParked(ref, parked)) ? 'recovered' : undefined;
      return (await settle(ref, { state: 'failed', error })) ? 'failed' : undefined;
    },

    /**
     * Stores a response too big for its item's document in the bucket (the write retried in place:
     * the answer is paid for); the object's name, for the item to point at.
     */
    offloadAnswer: (item: Pick<ItemRef, 'jobId' | 'itemId'>, response: unknown): Promise<string> =>
      answers.offload(item, response),
  };

  return lifecycle;
}
