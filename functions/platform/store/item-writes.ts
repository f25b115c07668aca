import { randomUUID } from 'node:crypto';
import { FieldValue, type Firestore } from '@google-cloud/firestore';
import { coalesce } from './coalesce.js';
import type { CounterWrites } from './counters.js';
import { decodeVersion, encodeVersion, isPreconditionFailure, landed } from './firestore.js';
import { stateFields } from './item-codec.js';
import type { ItemRef, ItemsStore, StoredOutcome } from './items.js';

/**
 * Most leases or outcomes in one commit. An outcome holds up to 512 KiB of response inline and a
 * commit at most 10 MiB; a commit too big fails, and its writes go one by one.
 */
const MAX_COALESCED = 16;

interface LeaseCall {
  item: ItemRef;
  leaseMs: number;
  nowMs: number;
}

interface SettleCall {
  item: ItemRef;
  outcome: StoredOutcome;
}

/**
 * An item's lease and its outcome, the two writes every delivery makes. Calls made in the same turn
 * (a task's items, an instance's deliveries at once) go out as one commit (`coalesce.ts`); each
 * caller still learns its own fate.
 */
export function createOutcomeWrites(
  db: Firestore,
  items: (jobId: string) => FirebaseFirestore.CollectionReference,
  counters: CounterWrites,
): Pick<ItemsStore, 'lease' | 'settle'> {
  const itemDoc = (item: Pick<ItemRef, 'jobId' | 'itemId'>) => items(item.jobId).doc(item.itemId);
  const since = (item: ItemRef) => ({ lastUpdateTime: decodeVersion(item.version) });
  const leaseFields = (w: LeaseCall, leaseId: string) => ({
    lease: { id: leaseId, untilMs: w.nowMs + w.leaseMs },
    attempts: FieldValue.increment(1),
  });

  /** One commit of the calls' preconditioned lease updates; each call's lease id and new version. */
  const commitLeases = async (calls: LeaseCall[]) => {
    const ids = calls.map(() => randomUUID());
    const batch = db.batch();
    for (const [i, w] of calls.entries())
      batch.update(itemDoc(w.item), leaseFields(w, ids[i]!), since(w.item));
    const written = await batch.commit();
    return written.map((r, i) => ({ leaseId: ids[i]!, version: encodeVersion(r.writeTime) }));
  };

  /** Leases taken in the same turn: one commit of their preconditioned updates. */
  const leaseOne = coalesce<LeaseCall, { leaseId: string; version: string } | undefined>({
    key: (w) => itemDoc(w.item).path,
    max: MAX_COALESCED,
    together: commitLeases,
    async alone(w) {
      try {
        // Optimistic claim: only if nobody touched the item since we read it.
        return (await commitLeases([w]))[0];
      } catch (err) {
        if (isPreconditionFailure(err)) return undefined;
        throw err;
      }
    },
  });

  /**
   * One commit of the calls' outcomes and, per job, one counter shard incremented by their sum:
   * each item and its count land together or not at all.
   */
  const commitOutcomes = async (calls: SettleCall[]) => {
    const batch = db.batch();
    const byJob = new Map<string, SettleCall[]>();
    for (const w of calls) {
      batch.update(itemDoc(w.item), stateFields(w.outcome), since(w.item));
      const ofJob = byJob.get(w.item.jobId) ?? [];
      ofJob.push(w);
      byJob.set(w.item.jobId, ofJob);
    }
    for (const [jobId, ofJob] of byJob) {
      const count = counters.increment(
        jobId,
        ofJob[0]!.item.shards,
        ofJob.map((w) => w.outcome),
      );
      batch.set(count.ref, count.data, { merge: true });
    }
    await batch.commit();
    return calls.map(() => true);
  };

  /** Outcomes written in the same turn: one commit (`commitOutcomes`); false when the lease was lost. */
  const settleOne = coalesce<SettleCall, boolean>({
    key: (w) => itemDoc(w.item).path,
    max: MAX_COALESCED,
    together: commitOutcomes,
    alone: (w) => landed(commitOutcomes([w])),
  });

  return {
    lease: (item, leaseMs, nowMs) => leaseOne({ item, leaseMs, nowMs }),
    settle: (item, outcome) => settleOne({ item, outcome }),
  };
}
