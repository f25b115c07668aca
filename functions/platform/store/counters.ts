import { FieldValue, type Firestore } from '@google-cloud/firestore';
import type { PriceTier } from '../../core/cost.js';
import { implicitCacheCounterFields } from '../../core/implicit-cache.js';
import type { ItemState, Usage } from '../../core/jobs.js';
import { addEvidence, itemEvidence, type TokenEvidence } from '../../core/token-evidence.js';
import {
  cacheCounterFields,
  sumTotals,
  type Totals,
  type TotalsPart,
  tierCounterFields,
} from '../../core/totals.js';

/** What callers read of a job's counters. */
export interface CountersStore {
  /**
   * The job's counts, usage and cost: one read of every shard and of the `extra` counter documents
   * (see `JobSpec.extraCounters`), no query.
   */
  totals(jobId: string, total: number, shards: number, extra?: readonly string[]): Promise<Totals>;
  /**
   * What the job's answers showed of the token estimate (see `core/token-evidence.ts`): the sums
   * every succeeded item with an estimate added to its shard; one read of every shard.
   */
  evidence(jobId: string, shards: number): Promise<TokenEvidence>;
  /** Writes a whole counter document (not an increment): writing it again counts nothing twice. */
  put(jobId: string, docId: string, counts: CounterValues): Promise<void>;
  /**
   * Counts one 429 of the job's calls to `model` by the quotaId it named (`unknown` for none). Only
   * 429s write it, which the plan keeps rare, so one document takes them.
   */
  countQuota429(jobId: string, model: string, quotaId: string): Promise<void>;
  /** The job's 429s: model → quotaId → count (empty when none). */
  quota429s(jobId: string): Promise<Quota429Counts>;
}

/** A job's 429s by model and quotaId (`GenerateRequestsPerMinutePerProjectPerModel`, …). */
export type Quota429Counts = Record<string, Record<string, number>>;

/** The counter document of a job's 429s (beside its shards, never summed into its totals). */
export const QUOTA_429_DOC = 'quota429s';

/**
 * What one counter document holds: counts, usage, cost, and per tier that served answers
 * `items_<tier>`, `costUsd_<tier>` with `standardCostUsd` (core/totals.ts `tierCounterFields`).
 */
export type CounterValues = TotalsPart;

/** What the items store writes in the same commit as an outcome. */
export interface CounterWrites {
  /**
   * The document and merge-increments that count a job's outcomes (one, or several written in one
   * commit) in a random shard.
   */
  increment(
    jobId: string,
    shards: number,
    outcomes: readonly CountedOutcome[],
  ): { ref: FirebaseFirestore.DocumentReference; data: Record<string, FieldValue> };
}

/** What an outcome adds to its job's counters. */
export interface CountedOutcome {
  state: ItemState;
  usage?: Usage;
  costUsd?: number;
  tier?: PriceTier;
  standardCostUsd?: number;
  estimatedTokens?: number;
  cached?: { savedUsd: number };
  /** What Gemini's implicit cache saved on this answer (core/implicit-cache.ts). */
  implicitSavedUsd?: number;
}

/**
 * The amounts one outcome adds to its counter document, by field (the fake stores count with the
 * same amounts).
 */
export function counterAmounts(outcome: CountedOutcome): Record<string, number> {
  return {
    [outcome.state]: 1,
    promptTokens: outcome.usage?.promptTokens ?? 0,
    outputTokens: outcome.usage?.outputTokens ?? 0,
    costUsd: outcome.costUsd ?? 0,
    ...tierCounterFields(outcome),
    ...cacheCounterFields(outcome),
    ...implicitCacheCounterFields(outcome),
    ...evidenceCounts(outcome),
  };
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
    async evidence(jobId, shards) {
      const refs = Array.from({ length: shards }, (_, n) => counters(jobId).doc(String(n)));
      const snaps = await db.getAll(...refs);
      return addEvidence(...snaps.map((s) => evidenceFields(s.data() ?? {})));
    },
    async put(jobId, docId, counts) {
      await counters(jobId).doc(docId).set(counts);
    },
    async countQuota429(jobId, model, quotaId) {
      // Nested objects, not a dotted path: model names hold dots.
      const data = { [model]: { [quotaId]: FieldValue.increment(1) } };
      await counters(jobId).doc(QUOTA_429_DOC).set(data, { merge: true });
    },
    async quota429s(jobId) {
      const snap = await counters(jobId).doc(QUOTA_429_DOC).get();
      return (snap.data() ?? {}) as Quota429Counts;
    },
    increment(jobId, shards, outcomes) {
      const sums: Record<string, number> = {};
      for (const outcome of outcomes)
        for (const [field, n] of Object.entries(counterAmounts(outcome)))
          sums[field] = (sums[field] ?? 0) + n;
      return {
        ref: counters(jobId).doc(String(Math.floor(Math.random() * shards))),
        data: Object.fromEntries(Object.entries(sums).map(([f, n]) => [f, FieldValue.increment(n)])),
      };
    },
  };
}

/** Counter fields of the token evidence, beside the counts (`ev` + the `TokenEvidence` field). */
const EVIDENCE_FIELDS = {
  items: 'evItems',
  estimated: 'evEstimated',
  estimatedSq: 'evEstimatedSq',
  counted: 'evCounted',
  countedSq: 'evCountedSq',
} as const satisfies Record<keyof TokenEvidence, string>;

/**
 * The amounts one succeeded item adds to the token evidence: its estimate against what Gemini counted
 * (`usage.promptTokens`). None for an outcome without an estimate (media items, failures).
 */
function evidenceCounts(outcome: CountedOutcome): Record<string, number> {
  if (outcome.state !== 'succeeded' || outcome.estimatedTokens === undefined) return {};
  const ev = itemEvidence(outcome.estimatedTokens, outcome.usage?.promptTokens ?? 0);
  if (ev.items === 0) return {};
  return Object.fromEntries(
    (Object.keys(EVIDENCE_FIELDS) as Array<keyof TokenEvidence>).map((k) => [EVIDENCE_FIELDS[k], ev[k]]),
  );
}

function evidenceFields(data: FirebaseFirestore.DocumentData): Partial<TokenEvidence> {
  return Object.fromEntries(
    (Object.keys(EVIDENCE_FIELDS) as Array<keyof TokenEvidence>).map((k) => [
      k,
      data[EVIDENCE_FIELDS[k]] ?? 0,
    ]),
  );
}
