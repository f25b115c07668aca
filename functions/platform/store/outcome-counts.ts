import { AggregateField } from '@google-cloud/firestore';
import type { ItemState } from '../../core/jobs.js';
import type { CounterValues } from './counters.js';

/**
 * The outcomes among the items a query selects, by aggregation queries (counts per terminal state,
 * sums of usage and cost): exact, and no item document is read.
 */
export async function countOutcomes(q: FirebaseFirestore.Query): Promise<CounterValues> {
  const count = async (state: ItemState) => (await q.where('state', '==', state).count().get()).data().count;
  const [succeeded, failed, cancelled, sums, standard] = await Promise.all([
    count('succeeded'),
    count('failed'),
    count('cancelled'),
    q
      .aggregate({
        promptTokens: AggregateField.sum('usage.promptTokens'),
        outputTokens: AggregateField.sum('usage.outputTokens'),
        costUsd: AggregateField.sum('costUsd'),
      })
      .get(),
    // Apart: a query with several aggregations counts only the documents that have every field
    // they name (Firestore's documented behaviour), so a field some answers lack would zero the rest.
    q.aggregate({ standardCostUsd: AggregateField.sum('standardCostUsd') }).get(),
  ]);
  const s = sums.data();
  return {
    succeeded,
    failed,
    cancelled,
    promptTokens: s.promptTokens ?? 0,
    outputTokens: s.outputTokens ?? 0,
    costUsd: s.costUsd ?? 0,
    ...(standard.data().standardCostUsd ? { standardCostUsd: standard.data().standardCostUsd } : {}),
  };
}
