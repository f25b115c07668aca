/** The items store's due times: set when items get tasks, and the sweep for items past them. */
import { type CollectionReference, FieldPath, type Firestore } from '@google-cloud/firestore';
import { commitChunks, writeEach } from './chunked-commits.js';
import { decodeVersion, isPreconditionFailure } from './firestore.js';
import { itemFrom } from './item-codec.js';
import type { ItemsStore } from './items.js';

/**
 * `setDue` and `listOverdue` of the items store (spread into it); `items` names a job's items,
 * `jobsName` the (prefixed) jobs collection whose items the collection-group query keeps.
 */
export function createDueQueries(
  db: Firestore,
  items: (jobId: string) => CollectionReference,
  jobsName: string,
): Pick<ItemsStore, 'setDue' | 'listOverdue'> {
  return {
    async setDue(jobId, due) {
      if (due.length === 0) return;
      // A page of a job's items at once, a chunk a commit (chunked-commits.ts), each only at the
      // version read: a delivery that took one meanwhile keeps its lease's version. A chunk with
      // such an item makes none of its writes; its items are then written one at a time.
      const writes = due.map((d) => ({
        ref: items(jobId).doc(d.itemId),
        dueByMs: d.dueByMs,
        version: decodeVersion(d.version),
        bytes: 100,
      }));
      const left = await commitChunks(db, writes, (batch, w) =>
        batch.update(w.ref, { dueByMs: w.dueByMs }, { lastUpdateTime: w.version }),
      );
      await writeEach(
        db,
        left,
        (writer, w) => writer.update(w.ref, { dueByMs: w.dueByMs }, { lastUpdateTime: w.version }),
        isPreconditionFailure,
      );
    },

    async listOverdue(nowMs, limit, after) {
      // Index: collection group `items`, (state, dueByMs, __name__): infra/terraform/firestore.tf.
      let q = db
        .collectionGroup('items')
        .where('state', '==', 'pending')
        .where('dueByMs', '<', nowMs)
        .orderBy('dueByMs')
        .orderBy(FieldPath.documentId())
        .limit(limit);
      if (after) q = q.startAfter(after.dueByMs, after.path);
      const { docs } = await q.get();
      // The cursor goes on from the last document read, whichever jobs collection it is in.
      const last = docs.length === limit ? docs[docs.length - 1] : undefined;
      return {
        items: docs.filter((d) => d.ref.parent.parent?.parent.id === jobsName).map(itemFrom),
        ...(last ? { next: { dueByMs: last.get('dueByMs') as number, path: last.ref.path } } : {}),
      };
    },
  };
}
