/** The items store's bulk writes: a job's new items, and a cancel's sweep of its pending ones. */
import {
  type CollectionReference,
  type DocumentData,
  FieldPath,
  FieldValue,
  type Firestore,
  type Timestamp,
} from '@google-cloud/firestore';
import type { NewItem } from '../../core/jobs.js';
import { commitChunks, writeEach } from './chunked-commits.js';
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
      const col = items(jobId);
      // Every item of one call expires together, with (about) its job: see expireAtFor.
      const expireAt = expireAtFor(retentionMs);
      const docs = newItems.map((item) => {
        const data = newItemFields(item, expireAt);
        return { ref: col.doc(item.id), data, bytes: approximateBytes(data) };
      });
      // A fresh job's items exist nowhere yet: a chunk goes in whole (chunked-commits.ts). One that
      // does not (an item already there: a retried intake; any fault) goes in item by item, each
      // item that exists left as it is.
      const left = await commitChunks(db, docs, (batch, doc) => batch.create(doc.ref, doc.data));
      await writeEach(db, left, (writer, doc) => writer.create(doc.ref, doc.data), isAlreadyExists);
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

/** A new item's size, from its two fields that can be large (the rest is a few hundred bytes). */
function approximateBytes(data: DocumentData): number {
  return 512 + (data.requestJson as string).length + (data.media ? JSON.stringify(data.media).length : 0);
}

/** A new item's document. */
function newItemFields(item: NewItem, expireAt: Timestamp): DocumentData {
  return {
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
  };
}
