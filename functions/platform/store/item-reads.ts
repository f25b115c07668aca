/** The items store's reads: an item with its job, pages of items, and outcomes in input or finish order. */
import { type CollectionReference, FieldPath, type Firestore } from '@google-cloud/firestore';
import type { ItemRecord, JobRecord } from '../../core/jobs.js';
import { coalesce } from './coalesce.js';
import { fromMicros } from './firestore.js';
import { finishedOutcomeFrom, itemFrom, OUTCOME_FIELDS, outcomeFrom } from './item-codec.js';
import type { ItemsStore } from './items.js';
import { jobFrom } from './job-codec.js';

interface ItemAt {
  jobId: string;
  itemId: string;
}

/**
 * The reads of the items store (spread into it); `items` names a job's items, `jobsName` the
 * (prefixed) jobs collection.
 */
export function createItemReads(
  db: Firestore,
  items: (jobId: string) => CollectionReference,
  jobsName: string,
): Pick<ItemsStore, 'getWithJob' | 'getMany' | 'list' | 'streamOutcomes' | 'listOutcomes' | 'listFinished'> {
  type ItemWithJob = [ItemRecord | undefined, JobRecord | undefined];
  const itemDoc = (r: ItemAt) => items(r.jobId).doc(r.itemId);
  const jobDoc = (r: ItemAt) => db.collection(jobsName).doc(r.jobId);
  /**
   * An item with its job, read in one `getAll` with every other item read in the same turn (a task's
   * items, an instance's deliveries at once): their jobs, mostly the same one, are read once.
   */
  const getWithJob = coalesce<ItemAt, ItemWithJob>({
    key: (r) => itemDoc(r).path,
    max: 100,
    async together(reads) {
      const refs = new Map<string, FirebaseFirestore.DocumentReference>();
      for (const r of reads) for (const ref of [itemDoc(r), jobDoc(r)]) refs.set(ref.path, ref);
      const snaps = new Map((await db.getAll(...refs.values())).map((s) => [s.ref.path, s]));
      return reads.map((r) => withJob(snaps.get(itemDoc(r).path), snaps.get(jobDoc(r).path)));
    },
    async alone(r) {
      const [itemSnap, jobSnap] = await db.getAll(itemDoc(r), jobDoc(r));
      return withJob(itemSnap, jobSnap);
    },
  });
  const withJob = (
    itemSnap: FirebaseFirestore.DocumentSnapshot | undefined,
    jobSnap: FirebaseFirestore.DocumentSnapshot | undefined,
  ): ItemWithJob => [
    itemSnap?.exists ? itemFrom(itemSnap) : undefined,
    jobSnap?.exists ? jobFrom(jobSnap) : undefined,
  ];

  return {
    getWithJob: (jobId, itemId) => getWithJob({ jobId, itemId }),

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
