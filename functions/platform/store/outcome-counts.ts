import { AggregateField } from '@google-cloud/firestore';
import type { ItemState } from '../../core/jobs.js';
import type { CounterValues } from './counters.js';

/**
 * The outcomes among the items a query selects, by aggregation queries (counts per terminal state,
 * sums of usage and cost): exact, and no item document is read.
 */
export async function countOutcomes(q: FirebaseFirestore.Query): Promise<CounterValues> {
  const count = async (state: ItemState) => (await q.where('state', '==', state).count().get()).data().count;
  const [succeeded, failed, cancelled, cacheHits, sums] = await Promise.all([
    count('succeeded'),
    count('failed'),
    count('cancelled'),
    // Answers from the response cache carry `cacheSavedUsd` (never negative).
    q
      .where('cacheSavedUsd', '>=', 0)
      .count()
      .get()
      .then((s) => s.data().count),
    q
      .aggregate({
        promptTokens: AggregateField.sum('usage.promptTokens'),
        outputTokens: AggregateField.sum('usage.outputTokens'),
        costUsd: AggregateField.sum('costUsd'),
        standardCostUsd: AggregateField.sum('standardCostUsd'),
        cacheSavedUsd: AggregateField.sum('cacheSavedUsd'),
      })
      .get(),
  ]);
  const s = sums.data();
  return {
    succeeded,
    failed,
    cancelled,
    promptTokens: s.promptTokens ?? 0,
    outputTokens: s.outputTokens ?? 0,
    costUsd: s.costUsd ?? 0,
    ...(s.standardCostUsd ? { standardCostUsd: s.standardCostUsd } : {}),
    ...(cacheHits > 0 ? { cacheHits, cacheSavedUsd: s.cacheSavedUsd ?? 0 } : {}),
  };
}
