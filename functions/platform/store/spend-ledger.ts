import type { Firestore } from '@google-cloud/firestore';
import { type SpendGate, type SpendLedger, type SpendLimit, spendGate } from '../../core/spend-pace.js';

/**
 * The project's spend plan (`core/spend-pace.ts`), one document shared by every model's ledger:
 * `spendLedger/project`, its seconds as a JSON string (thousands of per-second keys must not be
 * indexed). `LedgerStore.reserve` reads and writes it in the transaction that plans the model's
 * ledger, when the deployment has a spend limit.
 */
export interface SpendPlan {
  limit: SpendLimit;
  /** Each item's estimated cost, in the order of the tokens `reserve` plans. */
  costsUsd: readonly number[];
  /** Told, once planned, the latest second the spend limit alone held an item back to (or undefined). */
  report?: (heldUntilSec: number | undefined) => void;
}

export function spendLedgerRef(db: Firestore, prefix = ''): FirebaseFirestore.DocumentReference {
  return db.collection(`${prefix}spendLedger`).doc('project');
}

/** The gate over the stored spend ledger for one page (`spendGate`). */
export function spendGateFrom(
  snap: FirebaseFirestore.DocumentSnapshot,
  plan: SpendPlan,
  nowMs: number,
): SpendGate {
  const json = snap.exists ? (snap.data()!.bucketsJson as string | undefined) : undefined;
  const ledger: SpendLedger = { buckets: json ? (JSON.parse(json) as Record<string, number>) : {} };
  return spendGate(ledger, plan.limit, plan.costsUsd, nowMs);
}

/** The document to write back once the page is planned. */
export function spendLedgerData(gate: SpendGate): { bucketsJson: string } {
  return { bucketsJson: JSON.stringify(gate.ledger().buckets) };
}
