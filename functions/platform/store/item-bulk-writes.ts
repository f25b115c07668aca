/** The items store's bulk writes: a job's new items, and a cancel's sweep of its pending ones. */
import { type CollectionReference, FieldPath, FieldValue, type Firestore } from '@google-cloud/firestore';
import { ignorePreconditionFailure, isAlreadyExists, isPreconditionFailure } from './firestore.js';
import { stateFields } from './item-codec.js';
import type { ItemsStore } from './items.js';
import { expireAtFor } from './job-codec.js';

/** `createMany` and `sweepPending` of the items store (spread into it); `items` names a job's items. */
export function createBulkWrites(
  db: Firestore,
  items: (jobId: string) => CollectionReference,
  retentionMs: number,
): Pick<ItemsStore, 'createMany' | 'sweepPending'> {
  return {
    async createMany(jobId, newItems) {
      // The default ramp (500 ops/s, +50% every 5 min) would cap ingest at 500 items/s; items go to
      // a fresh per-job subcollection, so a faster start is safe. Every write is awaited: a rejected
      // write left unhandled would kill the instance.
      const writer = db.bulkWriter({ throttling: { initialOpsPerSecond: 5000, maxOpsPerSecond: 10000 } });
      writer.onWriteError((err) => !isAlreadyExists(err) && err.failedAttempts < 5);
      const col = items(jobId);
      // Every item of one call expires together, with (about) its job: see expireAtFor.
      const expireAt = expireAtFor(retentionMs);
      const writes = newItems.map((item) =>
        writer.create(col.doc(item.id), {
          index: item.index,
          key: item.key,
          ...(item.keyField ? { keyField: item.keyField } : {}),
          requestJson: JSON.stringify(item.request),
          ...(item.media ? { media: item.media } : {}),
          estimatedTokens: item.estimatedTokens,
          attempts: 0,
          expireAt,
          ...(item.batchPart !== undefined ? { batchPart: item.batchPart } : {}),
          ...(typeof item.plannedDueByMs === 'number' ? { dueByMs: item.plannedDueByMs } : {}),
          // A bad bucket line is an item born failed: its error line stands in the results.
          ...(item.error
            ? { state: 'failed', error: item.error, finishedAt: FieldValue.serverTimestamp() }
            : { state: 'pending' }),
        }),
      );
      const settled = Promise.allSettled(writes);
      await writer.close();
      const failed = (await settled).find((r) => r.status === 'rejected' && !isAlreadyExists(r.reason));
      if (failed) throw (failed as PromiseRejectedResult).reason;
    },

    async sweepPending(jobId, outcome) {
      const writer = db.bulkWriter();
      writer.onWriteError((err) => !isPreconditionFailure(err) && err.failedAttempts < 5);
      const writes: Array<Promise<unknown>> = [];
      const swept: string[] = [];
      let last: FirebaseFirestore.QueryDocumentSnapshot | undefined;
      for (;;) {
        let q = items(jobId).where('state', '==', 'pending').orderBy(FieldPath.documentId()).limit(500);
        if (last) q = q.startAfter(last);
        const page = await q.get();
        for (const doc of page.docs) {
          // A precondition per item keeps a result that lands meanwhile.
          writes.push(
            writer
              .update(doc.ref, stateFields(outcome), { lastUpdateTime: doc.updateTime })
              .then(() => swept.push(doc.id), ignorePreconditionFailure),
          );
        }
        if (page.size < 500) break;
        last = page.docs[page.docs.length - 1];
      }
      const all = Promise.all(writes);
      await writer.close();
      await all;
      return swept;
    },
  };
}
