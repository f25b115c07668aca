import type { KeyField, PendingEntry, ResultLine } from '../api/jobs.js';
import type { ItemError } from './jobs.js';

/** One result line; its shape is part of the jobs API contract (`functions/api/jobs.ts`). */
export type { ResultLine } from '../api/jobs.js';

/**
 * The head of a line: the key under the name its input gave it (`key`, or `custom_id` for a line in
 * OpenAI's Batch format), then the input index.
 */
function lineHead(key: string, index: number, keyField: KeyField | undefined) {
  return keyField === 'custom_id' ? { custom_id: key, index } : { key, index };
}

/**
 * A succeeded item's line. `metadata` (as the Batch API's inlined responses carry it) is there only
 * for an answer served from the response cache: `{cached: true, cachedFromJob}`; the response is
 * passed through as Gemini sent it to the job that paid for it.
 */
export function successLine(
  key: string,
  index: number,
  response: unknown,
  keyField?: KeyField,
  cached?: { jobId: string },
): ResultLine {
  return {
    ...lineHead(key, index, keyField),
    response,
    ...(cached ? { metadata: { cached: true, cachedFromJob: cached.jobId } } : {}),
  };
}

export function errorLine(key: string, index: number, error: ItemError, keyField?: KeyField): ResultLine {
  return { ...lineHead(key, index, keyField), error };
}

/** The entry of an item with no outcome yet (`GET /jobs/{id}/results`). */
export function pendingEntry(key: string, index: number, keyField?: KeyField): PendingEntry {
  return { ...lineHead(key, index, keyField), state: 'pending' };
}

/** The error recorded for an item that a cancel ended before it ran. */
export const CANCELLED_ERROR: ItemError = {
  code: 499,
  status: 'CANCELLED',
  message: 'The job was cancelled.',
};
