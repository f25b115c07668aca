/** The items store's reads: an item with its job, pages of items, and outcomes in input or finish order. */
import { type CollectionReference, FieldPath, type Firestore } from '@google-cloud/firestore';
import { fromMicros } from './firestore.js';
import { finishedOutcomeFrom, itemFrom, OUTCOME_FIELDS, outcomeFrom } from './item-codec.js';
import type { ItemsStore } from './items.js';
import { jobFrom } from './job-codec.js';

/**
 * The reads of the items store (spread into it); `items` names a job's items, `jobsName` the
 * (prefixed) jobs collection.
 */
export function createItemReads(
  db: Firestore,
  items: (jobId: string) => CollectionReference,
  jobsName: string,
): Pick<ItemsStore, 'getWithJob' | 'getMany' | 'list' | 'streamOutcomes' | 'listOutcomes' | 'listFinished'> {
  return {
    async getWithJob(jobId, itemId) {
      const [itemSnap, jobSnap] = await db.getAll(
        items(jobId).doc(itemId),
        db.collection(jobsName).doc(jobId),
      );
      return [
        itemSnap?.exists ? itemFrom(itemSnap) : undefined,
        jobSnap?.exists ? jobFrom(jobSnap) : undefined,
      ];
    },

    async getMany(refs) {
      if (refs.length === 0) return [];
      const snaps = await db.getAll(...refs.map((r) => items(r.jobId).doc(r.itemId)));
      return snaps.map((s) => (s.exists ? itemFrom(s) : undefined));
    },

    async list(jobId, { afterId, limit }) {
      let q = items(jobId).orderBy(FieldPath.documentId()).limit(limit);
      if (afterId) q = q.startAfter(afterId);
      return (await q.get()).docs.map(itemFrom);
    },

    async *streamOutcomes(jobId) {
      const q = items(jobId)
        .orderBy(FieldPath.documentId())
        .select(...OUTCOME_FIELDS)
        .stream() as AsyncIterable<FirebaseFirestore.QueryDocumentSnapshot>;
      for await (const snap of q) yield outcomeFrom(snap);
    },

    async listOutcomes(jobId, { afterId, limit }) {
      let q = items(jobId)
        .orderBy(FieldPath.documentId())
        .select(...OUTCOME_FIELDS)
        .limit(limit);
      if (afterId) q = q.startAfter(afterId);
      return (await q.get()).docs.map(outcomeFrom);
    },

    async listFinished(jobId, cursor, limit, upToMicros) {
      let q = items(jobId)
        .orderBy('finishedAt')
        .orderBy(FieldPath.documentId())
        .select(...OUTCOME_FIELDS, 'finishedAt')
        .limit(limit);
      if (upToMicros !== undefined) q = q.where('finishedAt', '<=', fromMicros(upToMicros));
      if (cursor) q = q.startAfter(fromMicros(cursor.finishedAtMicros), cursor.itemId);
      return (await q.get()).docs.map(finishedOutcomeFrom);
    },
  };
}
