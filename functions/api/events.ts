/**
 * `GET /jobs/{id}/events` (text/event-stream): the `data` of each named event of the stream, and the
 * stream's events as a client reads them.
 */
import { z } from 'zod';
import { type JobView, jobViewSchema } from './jobs.js';
import { itemErrorSchema, type ResultLine, resultLineSchema } from './results.js';

const count = z.number().int().nonnegative();

/** The SSE `step` event: one branch of one step of one item ended (before its item's `result`). */
export const stepEventSchema = z.union([
  z.looseObject({
    key: z.string(),
    index: count,
    step: z.string(),
    branch: count,
    model: z.string(),
    response: z.unknown(),
  }),
  z.looseObject({
    key: z.string(),
    index: count,
    step: z.string(),
    branch: count,
    model: z.string(),
    error: itemErrorSchema,
  }),
]);
export type StepEvent = z.infer<typeof stepEventSchema>;

/**
 * The `data` of each named event: `result` once per finished item as it finishes (its `id` resumes
 * the stream through `Last-Event-ID`), then `done` with the job once it is terminal.
 */
export const jobEventDataSchemas = {
  result: resultLineSchema,
  done: jobViewSchema,
} as const;

/** An event of the stream, its `data` parsed. */
export type JobEvent =
  | { event: 'result'; id?: string; data: ResultLine }
  | { event: 'done'; id?: string; data: JobView };
