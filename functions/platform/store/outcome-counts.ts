import { AggregateField } from '@google-cloud/firestore';
import type { ItemState } from '../../core/jobs.js';
import type { CounterValues } from './counters.js';

/**
 * The outcomes among the items a query selects, by aggregation queries (counts per terminal state,
 * sums of usage and cost): exact, and no item document is read.
 */
export async function countOutcomes(q: FirebaseFirestore.Query): Promise<CounterValues> {
  const count = async (state: ItemState) => (await q.where('state', '==', state).count().get()).data().count;
  // One field per aggregation: a query with several counts only the documents that hold every
  // field they name (Firestore's documented behaviour), so a field some items lack (a standard
  // price, a cache saving) would zero the other sums.
  const sum = async (field: string) =>
    ((await q.aggregate({ total: AggregateField.sum(field) }).get()).data().total as number | null) ?? 0;
  const [
    succeeded,
    failed,
    cancelled,
    cacheHits,
    promptTokens,
    outputTokens,
    costUsd,
    standardCostUsd,
    saved,
  ] = await Promise.all([
    count('succeeded'),
    count('failed'),
    count('cancelled'),
    // Answers from the response cache carry `cacheSavedUsd` (never negative).
    q
      .where('cacheSavedUsd', '>=', 0)
      .count()
      .get()
      .then((s) => s.data().count),
    sum('usage.promptTokens'),
    sum('usage.outputTokens'),
    sum('costUsd'),
    sum('standardCostUsd'),
    sum('cacheSavedUsd'),
  ]);
  return {
    succeeded,
    failed,
    cancelled,
    promptTokens,
    outputTokens,
    costUsd,
    ...(standardCostUsd ? { standardCostUsd } : {}),
    ...(cacheHits > 0 ? { cacheHits, cacheSavedUsd: saved } : {}),
  };
}
