import type { ResultEntry } from '../api/jobs.js';
import { itemIdForIndex } from '../core/jobs.js';
import type { Caller } from '../platform/caller.js';
import { ValidationError } from '../platform/errors.js';
import { type IngestDeps, ownedJob } from './handler.js';

/**
 * A job's results as the jobs API serves them: `GET /jobs/{id}/results`, a page in input order
 * bounded by count and bytes, its `pageToken` bound to the caller and the job; or the whole job as
 * JSONL, streamed.
 */

/** A results page's position (the next item's index), bound to the caller and the job. */
const resultsBinding = (jobId: string, caller: Caller) => ({ caller: caller.id, scope: `results:${jobId}` });
function decodeToken(token: string, jobId: string, caller: Caller, deps: IngestDeps): number {
  const n = Number(deps.pageTokens.open(token, resultsBinding(jobId, caller)));
  if (!Number.isInteger(n) || n < 0)
    throw new ValidationError('pageToken is not valid.', [{ field: 'pageToken', message: 'invalid' }]);
  return n;
}

/** Items read per round of a results page. */
const RESULTS_CHUNK = 100;
/** A results page stops before this many bytes of results (it always holds at least one). */
export const RESULTS_PAGE_BYTES = 8 * 1024 * 1024;

/** `GET /jobs/{id}/results`: one page in input order. */
export async function getResultsPage(
  jobId: string,
  query: { pageToken?: string; pageSize?: string },
  caller: Caller,
  deps: IngestDeps,
): Promise<{ results: ResultEntry[]; nextPageToken?: string }> {
  const job = await ownedJob(jobId, caller, deps);
  const pageSize = query.pageSize === undefined ? 100 : Number(query.pageSize);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
    throw new ValidationError('pageSize must be a whole number from 1 to 1000.', [
      { field: 'pageSize', message: 'out of range' },
    ]);
  }
  const start = query.pageToken ? decodeToken(query.pageToken, jobId, caller, deps) : 0;
  // Bounded by count and by bytes (answers are up to half a MiB inline, more from the bucket), and
  // read a chunk at a time with the result fields only: never the requests.
  const results: ResultEntry[] = [];
  let bytes = 0;
  let afterId = start > 0 ? itemIdForIndex(start - 1) : undefined;
  let lastIndex: number | undefined;
  for (let full = false; !full && results.length < pageSize; ) {
    const limit = Math.min(RESULTS_CHUNK, pageSize - results.length);
    const chunk = await deps.lifecycle.listOutcomes(jobId, { ...(afterId ? { afterId } : {}), limit });
    const entries = await Promise.all(chunk.map((item) => deps.lifecycle.resultEntry(item)));
    for (const [n, entry] of entries.entries()) {
      const size = JSON.stringify(entry).length;
      if (results.length > 0 && bytes + size > RESULTS_PAGE_BYTES) {
        full = true;
        break;
      }
      results.push(entry);
      bytes += size;
      lastIndex = chunk[n]!.index;
    }
    if (chunk.length < limit) break;
    afterId = chunk[chunk.length - 1]!.id;
  }
  const next =
    lastIndex !== undefined && lastIndex + 1 < job.total
      ? deps.pageTokens.seal(String(lastIndex + 1), resultsBinding(jobId, caller))
      : undefined;
  return { results, ...(next ? { nextPageToken: next } : {}) };
}

/** `GET /jobs/{id}/results?format=jsonl`: every item in input order, one line each, streamed. */
export async function* streamResults(
  jobId: string,
  caller: Caller,
  deps: IngestDeps,
): AsyncGenerator<string> {
  await ownedJob(jobId, caller, deps);
  yield* deps.lifecycle.resultLines(jobId);
}
