import { FieldValue, type Firestore } from '@google-cloud/firestore';
import type { PriceTier } from '../../core/cost.js';
import type { ItemState, Usage } from '../../core/jobs.js';
import { sumTotals, type Totals, type TotalsPart, tierCounterFields } from '../../core/totals.js';

/** What callers read of a job's counters. */
export interface CountersStore {
  /**
   * The job's counts, usage and cost: one read of every shard and of the `extra` counter documents
   * (see `JobSpec.extraCounters`), no query.
   */
  totals(jobId: string, total: number, shards: number, extra?: readonly string[]): Promise<Totals>;
  /** Writes a whole counter document (not an increment): writing it again counts nothing twice. */
  put(jobId: string, docId: string, counts: CounterValues): Promise<void>;
}

/**
 * What one counter document holds: counts, usage, cost, and per tier that served answers
 * `items_<tier>`, `costUsd_<tier>` with `standardCostUsd` (core/totals.ts `tierCounterFields`).
 */
export type CounterValues = TotalsPart;

/** What the items store writes in the same commit as an outcome. */
export interface CounterWrites {
  /** The document and merge-increments that count one outcome in a random shard. */
  increment(
    jobId: string,
    shards: number,
    outcome: {
      state: ItemState;
      usage?: Usage;
      costUsd?: number;
      tier?: PriceTier;
      standardCostUsd?: number;
    },
  ): { ref: FirebaseFirestore.DocumentReference; data: Record<string, FieldValue> };
}

/**
 * `jobs/{jobId}/counters/{0..shards-1}`: every item outcome increments one random shard in the same
 * commit as the item's own update, so each item is counted exactly once and no document takes more
 * than a share of Firestore's sustained write rate per document. No hot counter, no per-item query
 * (which the Firestore emulator would serve by scanning).
 */
export function createCountersStore(db: Firestore, prefix = ''): CountersStore & CounterWrites {
  const counters = (jobId: string) => db.collection(`${prefix}jobs`).doc(jobId).collection('counters');
  return {
    async totals(jobId, total, shards, extra = []) {
      const refs = [
        ...Array.from({ length: shards }, (_, n) => counters(jobId).doc(String(n))),
        ...extra.map((id) => counters(jobId).doc(id)),
      ];
      const snaps = await db.getAll(...refs);
      return sumTotals(
        snaps.map((s) => s.data() ?? {}),
        total,
      );
    },
    async put(jobId, docId, counts) {
      await counters(jobId).doc(docId).set(counts);
    },
    increment(jobId, shards, outcome) {
      return {
        ref: counters(jobId).doc(String(Math.floor(Math.random() * shards))),
        data: {
          [outcome.state]: FieldValue.increment(1),
          promptTokens: FieldValue.increment(outcome.usage?.promptTokens ?? 0),
          outputTokens: FieldValue.increment(outcome.usage?.outputTokens ?? 0),
          costUsd: FieldValue.increment(outcome.costUsd ?? 0),
          ...Object.fromEntries(
            Object.entries(tierCounterFields(outcome)).map(([f, n]) => [f, FieldValue.increment(n)]),
          ),
        },
      };
    },
  };
}
