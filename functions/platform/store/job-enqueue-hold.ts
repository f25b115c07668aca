/** The jobs store's enqueue hold: which delivery plans a job's items now. */
import { type CollectionReference, FieldValue, type Firestore } from '@google-cloud/firestore';
import type { JobsStore } from './jobs.js';

/**
 * `holdEnqueue` and `releaseEnqueue` of the jobs store (spread into it); `jobs` is its collection.
 * The hold is the job's `enqueueHold` ({holder, untilMs}), taken and given up in transactions so
 * two deliveries at once cannot both have it.
 */
export function createEnqueueHold(
  db: Firestore,
  jobs: CollectionReference,
): Pick<JobsStore, 'holdEnqueue' | 'releaseEnqueue'> {
  return {
    holdEnqueue(jobId, holder, nowMs, untilMs) {
      return db.runTransaction(async (tx) => {
        const snap = await tx.get(jobs.doc(jobId));
        if (!snap.exists) return false;
        const hold = snap.get('enqueueHold') as { holder: string; untilMs: number } | undefined;
        if (hold && hold.holder !== holder && hold.untilMs > nowMs) return false;
        tx.update(jobs.doc(jobId), { enqueueHold: { holder, untilMs } });
        return true;
      });
    },

    async releaseEnqueue(jobId, holder) {
      await db.runTransaction(async (tx) => {
        const snap = await tx.get(jobs.doc(jobId));
        if (snap.exists && snap.get('enqueueHold.holder') === holder)
          tx.update(jobs.doc(jobId), { enqueueHold: FieldValue.delete() });
      });
    },
  };
}
