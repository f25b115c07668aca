import { type BatchPart, type PartLimits, PartPlanner } from './batch.js';
import type { NewItem } from './jobs.js';

/**
 * A batch job's staged set, as the Batch API path reads it back (tick/batch-api/staged-lines.ts):
 * one JSONL line per item index, in order (`{"key", "request", "media"?}`), split into batches
 * within `limits` as the lines go past; each item that goes into a batch gets its `batchPart`.
 * A hole (a pipeline step's unit job has no unit for an item that ended at an earlier step) is a
 * `null` line: it keeps line n item n, only extends its part's range, and is never sent (it parses
 * as a bad line). Pure: the caller writes the lines.
 */
export function stagedSet(
  items: ReadonlyArray<NewItem | undefined>,
  limits: PartLimits,
): { lines: string[]; parts: BatchPart[]; batchItems: number } {
  const planner = new PartPlanner(limits);
  let offset = 0;
  let batchItems = 0;
  // Array.from, not map: a sparse array's holes are visited too.
  const lines = Array.from(items, (item, index) => {
    const line = item
      ? `${JSON.stringify({ key: item.key, request: item.request, ...(item.media ? { media: item.media } : {}) })}\n`
      : 'null\n';
    const bytes = Buffer.byteLength(line);
    if (!item) planner.add(index, offset, offset + bytes);
    else if (planner.place(item, offset, offset + bytes)) batchItems++;
    offset += bytes;
    return line;
  });
  return { lines, parts: planner.finish(), batchItems };
}
