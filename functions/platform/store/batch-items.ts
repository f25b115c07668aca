import { FieldPath, FieldValue, type Firestore } from '@google-cloud/firestore';
import type { CounterValues } from './counters.js';
import {
  decodeVersion,
  encodeVersion,
  ignorePreconditionFailure,
  isPreconditionFailure,
} from './firestore.js';
import { stateFields } from './item-codec.js';
import type { StoredOutcome } from './items.js';
import { countOutcomes } from './outcome-counts.js';

/** An item's state and version, as the batch collector needs it to write an outcome once. */
export interface ItemHead {
  state: string;
  /** The batch the item is in; null once it left it (sent back to the realtime path). */
  batchPart: number | null;
  version: string;
}

/**
 * The items of a job's batches, in bulk: outcomes for thousands of items at once (BulkWriter), each
 * written only if the item is still as read (so a result landing twice, or a cancel meanwhile, is
 * never overwritten), and a part's totals counted by aggregation once it is settled. Counter shards
 * are not touched: a part's totals go to one counter document (`counters.put`), written whole.
 */
export interface BatchItemsStore {
  heads(jobId: string, itemIds: string[]): Promise<Map<string, ItemHead>>;
  /** Writes each outcome if its item is still at `version`; how many landed. */
  settleMany(
    jobId: string,
    writes: Array<{ itemId: string; version: string; outcome: StoredOutcome }>,
  ): Promise<number>;
  /**
   * Pending items of batch `part`: `reroute` takes them out of the batch (the realtime path then
   * runs them) and, in the same write, makes them due by `dueByMs` (the reconciler gives an item
   * still pending and unleased past it a new task); `fail` records `outcome` on them. How many were
   * changed.
   */
  sweepPart(
    jobId: string,
    part: number,
    action: { kind: 'reroute'; dueByMs: number } | { kind: 'fail'; outcome: StoredOutcome },
  ): Promise<number>;
  /** Totals of the items of batch `part` that are terminal, by aggregation. */
  countPart(jobId: string, part: number): Promise<CounterValues>;
}

export function createBatchItemsStore(db: Firestore, prefix = ''): BatchItemsStore {
  const items = (jobId: string) => db.collection(`${prefix}jobs`).doc(jobId).collection('items');
  // Equality only: Firestore sums cannot follow a range filter on another field.
  const partQuery = (jobId: string, part: number) => items(jobId).where('batchPart', '==', part);

  const bulk = async (run: (writer: FirebaseFirestore.BulkWriter) => Array<Promise<unknown>>) => {
    const writer = db.bulkWriter({ throttling: { initialOpsPerSecond: 5000, maxOpsPerSecond: 10000 } });
    writer.onWriteError((err) => !isPreconditionFailure(err) && err.failedAttempts < 5);
    const all = Promise.all(run(writer));
    await writer.close();
    return all;
  };

  return {
    async heads(jobId, itemIds) {
      const out = new Map<string, ItemHead>();
      if (itemIds.length === 0) return out;
      const snaps = await db.getAll(...itemIds.map((id) => items(jobId).doc(id)), {
        fieldMask: ['state', 'batchPart'],
      });
      for (const s of snaps) {
        if (!s.exists) continue;
        out.set(s.id, {
          state: s.get('state'),
          batchPart: typeof s.get('batchPart') === 'number' ? s.get('batchPart') : null,
          version: encodeVersion(s.updateTime!),
        });
      }
      return out;
    },

    async settleMany(jobId, writes) {
      let landed = 0;
      await bulk((writer) =>
        writes.map((w) =>
          writer
            .update(items(jobId).doc(w.itemId), stateFields(w.outcome), {
              lastUpdateTime: decodeVersion(w.version),
            })
            .then(() => landed++, ignorePreconditionFailure),
        ),
      );
      return landed;
    },

    async sweepPart(jobId, part, action) {
      let changed = 0;
      let last: FirebaseFirestore.QueryDocumentSnapshot | undefined;
      for (;;) {
        let q = partQuery(jobId, part)
          .where('state', '==', 'pending')
          .orderBy(FieldPath.documentId())
          .select()
          .limit(500);
        if (last) q = q.startAfter(last);
        const page = await q.get();
        const patch =
          action.kind === 'reroute'
            ? { batchPart: FieldValue.delete(), dueByMs: action.dueByMs }
            : stateFields(action.outcome);
        await bulk((writer) =>
          page.docs.map((doc) =>
            writer
              .update(doc.ref, patch, { lastUpdateTime: doc.updateTime })
              .then(() => changed++, ignorePreconditionFailure),
          ),
        );
        if (page.size < 500) return changed;
        last = page.docs[page.docs.length - 1];
      }
    },

    countPart: (jobId, part) => countOutcomes(partQuery(jobId, part)),
  };
}
