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

  /** Leases taken in the same turn: one commit of their preconditioned updates. */
  const leaseOne = coalesce<LeaseCall, { leaseId: string; version: string } | undefined>({
    key: (w) => itemDoc(w.item).path,
    max: MAX_COALESCED,
    async together(calls) {
      const ids = calls.map(() => randomUUID());
      const batch = db.batch();
      for (const [i, w] of calls.entries())
        batch.update(itemDoc(w.item), leaseFields(w, ids[i]!), since(w.item));
      const written = await batch.commit();
      return written.map((r, i) => ({ leaseId: ids[i]!, version: encodeVersion(r.writeTime) }));
    },
    async alone(w) {
      const leaseId = randomUUID();
      try {
        // Optimistic claim: only if nobody touched the item since we read it.
        const written = await itemDoc(w.item).update(leaseFields(w, leaseId), since(w.item));
        return { leaseId, version: encodeVersion(written.writeTime) };
      } catch (err) {
        if (isPreconditionFailure(err)) return undefined;
        throw err;
      }
    },
  });

  /**
   * Outcomes written in the same turn: one commit of their items and, per job, one counter shard
   * incremented by their sum. Each item and its count still land together or not at all.
   */
  const settleOne = coalesce<SettleCall, boolean>({
    key: (w) => itemDoc(w.item).path,
    max: MAX_COALESCED,
    async together(calls) {
      const batch = db.batch();
      for (const w of calls) batch.update(itemDoc(w.item), stateFields(w.outcome), since(w.item));
      const byJob = new Map<string, SettleCall[]>();
      for (const w of calls) byJob.set(w.item.jobId, [...(byJob.get(w.item.jobId) ?? []), w]);
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
    },
    alone(w) {
      const count = counters.increment(w.item.jobId, w.item.shards, [w.outcome]);
      return landed(
        db
          .batch()
          .update(itemDoc(w.item), stateFields(w.outcome), since(w.item))
          .set(count.ref, count.data, { merge: true })
          .commit(),
      );
    },
  });

  return {
    lease: (item, leaseMs, nowMs) => leaseOne({ item, leaseMs, nowMs }),
    settle: (item, outcome) => settleOne({ item, outcome }),
  };
}
