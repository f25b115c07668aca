import { FieldValue, Timestamp } from '@google-cloud/firestore';
import { PRICE_TIERS } from '../../core/cost.js';
import type { ItemRecord } from '../../core/jobs.js';
import { encodeVersion, toDate, toMicros } from './firestore.js';
import type { StoredOutcome } from './items.js';

/*
 * How an item is stored: requests and responses as JSON strings (Firestore forbids nested arrays,
 * and nothing queries them), the fields an outcome writes, and the record read back.
 */

/** The fields an outcome writes on its item (the response inline, or the object that holds it). */
export function stateFields(outcome: StoredOutcome): Record<string, unknown> {
  const patch: Record<string, unknown> = {
    state: outcome.state,
    finishedAt: FieldValue.serverTimestamp(),
    lease: null,
  };
  if (outcome.state === 'succeeded') {
    if (outcome.responseObject) patch.responseObject = outcome.responseObject;
    else patch.responseJson = outcome.responseJson ?? JSON.stringify(outcome.response);
  } else patch.error = outcome.error;
  if (outcome.usage) patch.usage = outcome.usage;
  if (outcome.costUsd !== undefined) patch.costUsd = outcome.costUsd;
  if (outcome.state === 'succeeded' && outcome.tier) {
    patch.tier = outcome.tier;
    patch.standardCostUsd = outcome.standardCostUsd ?? outcome.costUsd ?? 0;
  }
  if (outcome.steps) patch.stepsJson = JSON.stringify(outcome.steps);
  if (outcome.state === 'succeeded' && outcome.cached) {
    patch.cached = outcome.cached;
    // Flat, for the aggregation queries that count a cancelled job's items (outcome-counts.ts).
    patch.cacheSavedUsd = outcome.cached.savedUsd;
  }
  return patch;
}

/** What a result line needs of an item: no request, no lease. */
export type ItemOutcomeRecord = Pick<
  ItemRecord,
  'id' | 'index' | 'key' | 'keyField' | 'state' | 'response' | 'responseObject' | 'error' | 'cached' | 'steps'
>;

/** An outcome with its finish time: what the event stream reads (its cursor is the finish time). */
export type FinishedOutcome = ItemOutcomeRecord & Pick<ItemRecord, 'finishedAtMicros'>;

/** The fields of an item document a result line is made of. */
export const OUTCOME_FIELDS = [
  'index',
  'key',
  'keyField',
  'state',
  'responseJson',
  'responseObject',
  'error',
  'cached',
  'stepsJson',
];

/** The outcome of an item from a document read with {@link OUTCOME_FIELDS}. */
export function outcomeFrom(snap: FirebaseFirestore.DocumentSnapshot): ItemOutcomeRecord {
  const d = snap.data() ?? {};
  return {
    id: snap.id,
    index: d.index,
    key: d.key,
    ...(d.keyField === 'custom_id' ? { keyField: d.keyField } : {}),
    state: d.state,
    ...(d.responseJson ? { response: JSON.parse(d.responseJson) } : {}),
    ...(d.responseObject ? { responseObject: d.responseObject } : {}),
    ...(d.error ? { error: d.error } : {}),
    ...(d.cached ? { cached: d.cached } : {}),
    ...(typeof d.stepsJson === 'string' ? { steps: JSON.parse(d.stepsJson) } : {}),
  };
}

/** A finished item's outcome from a document read with {@link OUTCOME_FIELDS} and `finishedAt`. */
export function finishedOutcomeFrom(snap: FirebaseFirestore.DocumentSnapshot): FinishedOutcome {
  const finishedAt = snap.get('finishedAt');
  return {
    ...outcomeFrom(snap),
    finishedAtMicros: finishedAt instanceof Timestamp ? toMicros(finishedAt) : null,
  };
}

/** An item record from its document; `jobId` from its path. */
export function itemFrom(snap: FirebaseFirestore.DocumentSnapshot): ItemRecord & { jobId: string } {
  const d = snap.data() ?? {};
  const item: ItemRecord & { jobId: string } = {
    jobId: snap.ref.parent.parent?.id ?? '',
    id: snap.id,
    index: d.index,
    key: d.key,
    request: JSON.parse(d.requestJson),
    estimatedTokens: d.estimatedTokens ?? 0,
    plannedMs: d.plannedMs ?? null,
    state: d.state,
    attempts: d.attempts ?? 0,
    lease: d.lease ?? null,
    rounds: d.rounds ?? 0,
    roundAttempts: d.roundAttempts ?? 0,
    unreachedRounds: d.unreachedRounds ?? 0,
    dueByMs: typeof d.dueByMs === 'number' ? d.dueByMs : null,
    finishedAt: toDate(d.finishedAt),
    finishedAtMicros: d.finishedAt instanceof Timestamp ? toMicros(d.finishedAt) : null,
    version: encodeVersion(snap.updateTime!),
  };
  if (d.keyField === 'custom_id') item.keyField = d.keyField;
  if (d.media) item.media = d.media;
  if (typeof d.batchPart === 'number') item.batchPart = d.batchPart;
  if (d.responseJson) item.response = JSON.parse(d.responseJson);
  if (d.responseObject) item.responseObject = d.responseObject;
  if (d.error) item.error = d.error;
  if (d.usage) item.usage = d.usage;
  if (typeof d.costUsd === 'number') item.costUsd = d.costUsd;
  if (PRICE_TIERS.includes(d.tier)) item.tier = d.tier;
  if (typeof d.standardCostUsd === 'number') item.standardCostUsd = d.standardCostUsd;
  if (d.cached) item.cached = d.cached;
  if (typeof d.stepsJson === 'string') item.steps = JSON.parse(d.stepsJson);
  return item;
}
