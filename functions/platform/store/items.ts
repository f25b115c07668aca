import { FieldValue, type Firestore } from '@google-cloud/firestore';
import type { PriceTier } from '../../core/cost.js';
import type {
  CacheHit,
  FinishCursor,
  ItemError,
  ItemRecord,
  JobRecord,
  NewItem,
  Usage,
} from '../../core/jobs.js';
import { sumTotals, type Totals } from '../../core/totals.js';
import type { CounterWrites } from './counters.js';
import {
  decodeVersion,
  encodeVersion,
  ignorePreconditionFailure,
  isPreconditionFailure,
  landed,
} from './firestore.js';
import { createBulkWrites } from './item-bulk-writes.js';
import { type FinishedOutcome, type ItemOutcomeRecord, itemFrom } from './item-codec.js';
import { createDueQueries } from './item-due.js';
import { createItemReads } from './item-reads.js';
import { createOutcomeWrites } from './item-writes.js';
import { DEFAULT_RETENTION_MS } from './job-codec.js';
import { countOutcomes } from './outcome-counts.js';

/** An item at a known version, with the number of counter shards of its job. */
export interface ItemRef {
  jobId: string;
  itemId: string;
  version: string;
  shards: number;
}

/** An outcome as stored: the response inline, or the name of the object that holds it. */
export type StoredOutcome =
  | {
      state: 'succeeded';
      response?: unknown;
      /** The response already serialised (saves serialising a big answer twice). */
      responseJson?: string;
      responseObject?: string;
      usage?: Usage;
      costUsd?: number;
      /** The tier that served the answer, and its price at standard (see core/totals.ts). */
      tier?: PriceTier;
      standardCostUsd?: number;
      /** The item's estimate (text items): with `usage.promptTokens`, evidence of the token ratio. */
      estimatedTokens?: number;
      /** Answered from the response cache (counted as a hit, written on the item). */
      cached?: CacheHit;
      /** What Gemini's implicit cache saved on this answer (counted, not written on the item). */
      implicitSavedUsd?: number;
      /** A pipeline job's item: each step's outcome (its result line's `steps`). */
      steps?: Record<string, unknown>;
    }
  | {
      state: 'failed' | 'cancelled';
      error: ItemError;
      usage?: Usage;
      costUsd?: number;
      steps?: Record<string, unknown>;
    };

/** Where a sweep of overdue items goes on: the due time and document path of the last item it read. */
/** What the reconciler's new task changes on the item beside its round (`ItemsStore.retask`). */
export interface RetaskNext {
  dueByMs: number;
  attempts?: number;
  unreached?: boolean;
}

export interface OverdueCursor {
  dueByMs: number;
  path: string;
}

/** `jobs/{jobId}/items/{itemId}`; item ids are zero-padded indexes, so they list in input order. */
export interface ItemsStore {
  /**
   * Writes every item that does not exist yet (an item already there is left as it is: a duplicate
   * delivery of the same file must never reset an item a worker has finished); resolves only when
   * all are durable, rejects if any is not.
   */
  createMany(jobId: string, items: NewItem[]): Promise<void>;
  /** The item and its job in one round trip (every delivery starts with this read). */
  getWithJob(jobId: string, itemId: string): Promise<[ItemRecord | undefined, JobRecord | undefined]>;
  /** Items of any jobs in one round trip, in the order asked (undefined: no such item). */
  getMany(refs: ReadonlyArray<{ jobId: string; itemId: string }>): Promise<Array<ItemRecord | undefined>>;
  list(jobId: string, options: { afterId?: string; limit: number }): Promise<ItemRecord[]>;
  /**
   * Every item's outcome in input order, as one streamed query that reads only the result fields
   * (never the request): how a whole job's results are read.
   */
  streamOutcomes(jobId: string): AsyncIterable<ItemOutcomeRecord>;
  /** A page of outcomes in input order after `afterId`, result fields only (a results page). */
  listOutcomes(jobId: string, options: { afterId?: string; limit: number }): Promise<ItemOutcomeRecord[]>;
  /**
   * Finished items ordered by finish time then id, strictly after `cursor`, and finished at or before
   * `upToMicros` when given.
   */
  listFinished(
    jobId: string,
    cursor: FinishCursor | undefined,
    limit: number,
    upToMicros?: number,
  ): Promise<FinishedOutcome[]>;
  /** Takes the item's lease if it is still at `item.version`; the new version, or undefined. */
  lease(
    item: ItemRef,
    leaseMs: number,
    nowMs: number,
  ): Promise<{ leaseId: string; version: string } | undefined>;
  /**
   * Extends a held lease to `nowMs + leaseMs` if the item is still at `item.version` (a delivery still
   * working); the new version, or undefined when the lease was lost (another delivery, the reconciler
   * or a cancel changed the item). Attempts are not counted again.
   */
  renew(item: ItemRef, leaseMs: number, nowMs: number): Promise<{ version: string } | undefined>;
  /**
   * Gives the lease up (only if the item is as the lease left it); `plannedMs` records a new plan,
   * `dueByMs` the item's new due time (see `ItemRecord.dueByMs`).
   */
  release(item: ItemRef, plannedMs?: number, dueByMs?: number): Promise<void>;
  /**
   * Records the outcome if the item is still at `item.version`, counting it in one counter shard in
   * the same commit: exactly once. False only when the precondition failed (someone else won);
   * any other failure (contention, unavailable) throws.
   */
  settle(item: ItemRef, outcome: StoredOutcome): Promise<boolean>;
  /**
   * Records the reconciler's new task for the item (created before this write): clears the lease
   * and the plan, counts a round and sets the new task's due time, if the item is still at its
   * version. False when someone else changed it first (the new task is then a harmless duplicate).
   * `next.attempts`: the item's attempts now (`ItemRecord.roundAttempts`); `next.unreached`: the
   * round ending was one whose task never reached the item (`ItemRecord.unreachedRounds`).
   */
  retask(item: ItemRef, next?: RetaskNext): Promise<boolean>;
  /**
   * Sets the due time of items about to get their tasks (`ItemRecord.dueByMs`), each only if it is
   * still at the version given (an item someone moved on since is left as it is). Resolves when
   * every write has landed or was refused by its precondition; rejects on any other failure.
   */
  setDue(jobId: string, due: Array<{ itemId: string; version: string; dueByMs: number }>): Promise<void>;
  /**
   * Pending items due before `nowMs`, across jobs, by due time then path, strictly after `after`:
   * the reconciler's sweep for items no task will deliver. Their leases, live or not, are the
   * caller's to judge. `next` is where the next page starts, absent when this page was the last.
   */
  listOverdue(
    nowMs: number,
    limit: number,
    after?: OverdueCursor,
  ): Promise<{ items: Array<ItemRecord & { jobId: string }>; next?: OverdueCursor }>;
  /**
   * Ends every pending item of a cancelled job as cancelled (a result landing meanwhile is kept);
   * the ids of the items it ended.
   */
  sweepPending(jobId: string, outcome: StoredOutcome & { state: 'cancelled' }): Promise<string[]>;
  /** Exact totals by aggregation queries (once, when a cancel ends a job: the sweep skips the counters). */
  countStates(jobId: string, total: number): Promise<Totals>;
  /** Pending items whose lease ran out before `nowMs`, across jobs. */
  listExpiredLeases(nowMs: number, limit: number): Promise<Array<ItemRecord & { jobId: string }>>;
}

export function createItemsStore(
  db: Firestore,
  counters: CounterWrites,
  prefix = '',
  retentionMs = DEFAULT_RETENTION_MS,
): ItemsStore {
  const jobsName = `${prefix}jobs`;
  const items = (jobId: string) => db.collection(jobsName).doc(jobId).collection('items');

  const store: ItemsStore = {
    ...createBulkWrites(db, items, retentionMs),
    ...createOutcomeWrites(db, items, counters),
    ...createDueQueries(db, items, jobsName),
    ...createItemReads(db, items, jobsName),

    async renew(item, leaseMs, nowMs) {
      try {
        const written = await items(item.jobId)
          .doc(item.itemId)
          .update({ 'lease.untilMs': nowMs + leaseMs }, { lastUpdateTime: decodeVersion(item.version) });
        return { version: encodeVersion(written.writeTime) };
      } catch (err) {
        if (isPreconditionFailure(err)) return undefined;
        throw err;
      }
    },

    async release(item, plannedMs, dueByMs) {
      await items(item.jobId)
        .doc(item.itemId)
        .update(
          {
            lease: null,
            ...(plannedMs === undefined ? {} : { plannedMs }),
            ...(dueByMs === undefined ? {} : { dueByMs }),
          },
          { lastUpdateTime: decodeVersion(item.version) },
        )
        .catch(ignorePreconditionFailure);
    },

    async retask(item, next) {
      return landed(
        items(item.jobId)
          .doc(item.itemId)
          .update(
            {
              lease: null,
              plannedMs: null,
              rounds: FieldValue.increment(1),
              ...(next ? { dueByMs: next.dueByMs } : {}),
              ...(next?.attempts === undefined ? {} : { roundAttempts: next.attempts }),
              ...(next?.unreached ? { unreachedRounds: FieldValue.increment(1) } : {}),
            },
            { lastUpdateTime: decodeVersion(item.version) },
          ),
      );
    },

    async countStates(jobId, total) {
      return sumTotals([await countOutcomes(items(jobId))], total);
    },

    async listExpiredLeases(nowMs, limit) {
      // Only leased items have lease.untilMs (an outcome clears the lease): one range on one field.
      const snap = await db
        .collectionGroup('items')
        .where('lease.untilMs', '<', nowMs)
        .orderBy('lease.untilMs')
        .limit(limit)
        .get();
      return snap.docs
        .filter((d) => d.ref.parent.parent?.parent.id === jobsName && d.data().state === 'pending')
        .map(itemFrom);
    },
  };
  return store;
}
