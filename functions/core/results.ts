import type { ItemError } from './jobs.js';

/**
 * One result line: identical for realtime, batch and bucket jobs, and the Gemini Batch API's own
 * output shape plus the input `index`.
 */
export type ResultLine =
  | { key: string; index: number; response: unknown }
  | { key: string; index: number; error: ItemError };

export function successLine(key: string, index: number, response: unknown): ResultLine {
  return { key, index, response };
}

export function errorLine(key: string, index: number, error: ItemError): ResultLine {
  return { key, index, error };
}

/** The error recorded for an item that a cancel ended before it ran. */
export const CANCELLED_ERROR: ItemError = {
  code: 499,
  status: 'CANCELLED',
  message: 'The job was cancelled.',
};
