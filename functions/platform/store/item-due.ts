/** The items store's due times: set when items get tasks, and the sweep for items past them. */
import { type CollectionReference, FieldPath, type Firestore } from '@google-cloud/firestore';
import { decodeVersion, ignorePreconditionFailure, isPreconditionFailure } from './firestore.js';
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
      // A page of a job's items at once, like createMany: the default ramp (500 ops/s) would hold
      // every enqueued page up for a second.
      const writer = db.bulkWriter({ throttling: { initialOpsPerSecond: 5000, maxOpsPerSecond: 10000 } });
      writer.onWriteError((err) => !isPreconditionFailure(err) && err.failedAttempts < 5);
      const writes = due.map((d) =>
        writer
          .update(
            items(jobId).doc(d.itemId),
            { dueByMs: d.dueByMs },
            // Only the item as read: a delivery that took it meanwhile keeps its lease's version.
            { lastUpdateTime: decodeVersion(d.version) },
          )
          .catch(ignorePreconditionFailure),
      );
      const settled = Promise.allSettled(writes);
      await writer.close();
      const failed = (await settled).find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
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
