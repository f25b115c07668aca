import type { ResultLine } from '../api/jobs.js';
import type { ItemError } from './jobs.js';

/** One result line; its shape is part of the jobs API contract (`functions/api/jobs.ts`). */
export type { ResultLine } from '../api/jobs.js';

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
