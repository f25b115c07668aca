import type { ResultEntry } from '../api/jobs.js';
import type { FinishCursor, ItemRecord } from '../core/jobs.js';
import { errorLine, pendingEntry, successLine } from '../core/results.js';
import type { ItemOutcomeRecord } from '../platform/store/item-codec.js';
import type { LifecycleDeps } from './lifecycle.js';

/** A line with its `steps` after its key and index, before its `response` or `error`. */
function withSteps(line: ResultEntry, steps: Record<string, unknown>): ResultEntry {
  const { response, error, ...head } = line as Record<string, unknown>;
  return {
    ...head,
    steps,
    ...(response !== undefined ? { response } : {}),
    ...(error !== undefined ? { error } : {}),
  } as unknown as ResultEntry;
}

/**
 * The reading half of the lifecycle (spread into it): an item's result line, wherever its answer is
 * stored (the item's document, or the bucket for one too big), and the pages and streams of them.
 * Result fields only: the requests are never read to answer a results call. Every line names its key
 * the way the item's input did (`keyField`), whichever way it is read (page, JSONL, SSE, results file).
 */
export function createResultReader(deps: Pick<LifecycleDeps, 'stores' | 'objects'>) {
  const reader = {
    /** The response of a succeeded item, wherever it is stored. */
    async responseOf(item: Pick<ItemRecord, 'response' | 'responseObject'>): Promise<unknown> {
      return item.responseObject ? deps.objects.getJson(item.responseObject) : item.response;
    },

    listOutcomes: (jobId: string, options: { afterId?: string; limit: number }) =>
      deps.stores.items.listOutcomes(jobId, options),

    /**
     * The result line of an item, or its pending entry. A response stored in the bucket (too big for
     * the item's document) is read from there: the line a user reads is the same.
     */
    async resultEntry(item: ItemOutcomeRecord): Promise<ResultEntry> {
      const { key, index, keyField } = item;
      if (item.state === 'pending') return pendingEntry(key, index, keyField);
      const line =
        item.state === 'succeeded'
          ? successLine(key, index, await reader.responseOf(item), keyField, item.cached)
          : errorLine(
              key,
              index,
              item.error ?? { code: 500, status: 'UNKNOWN', message: 'no error recorded' },
              keyField,
            );
      // A pipeline job's line names each step's outcome before the last step's (api/jobs.ts).
      return item.steps ? withSteps(line, item.steps) : line;
    },

    /** Every item's entry in input order, one JSON line each, read a page at a time. */
    async *resultLines(jobId: string): AsyncGenerator<string> {
      for await (const item of deps.stores.items.streamOutcomes(jobId))
        yield `${JSON.stringify(await reader.resultEntry(item))}\n`;
    },

    listFinished: (jobId: string, cursor: FinishCursor | undefined, limit: number, upToMicros?: number) =>
      deps.stores.items.listFinished(jobId, cursor, limit, upToMicros),
  };
  return reader;
}
