/**
 * The jobs API contract's result lines (DESIGN "Result line"): the line every job writes, whatever its
 * path, a pipeline line's `steps`, and `GET /jobs/{id}/results` (its entries and pages). Re-exported
 * by ./jobs.ts. Pure zod, as the rest of the contract.
 */
import { z } from 'zod';
import type { Declared } from './declared.js';

const count = z.number().int().nonnegative();

/** The error half of a result line: Gemini's own `{code, status, message}`. */
export const itemErrorSchema = z.looseObject({
  code: z.number().int(),
  status: z.string(),
  message: z.string(),
  /** Why an item ended without being sent, when it was not a cancel: `budget` (the job's maxCostUsd). */
  reason: z.string().optional(),
});
export type ItemError = Declared<z.infer<typeof itemErrorSchema>>;

/** One branch of a step in a result line: the model that answered and its answer or error. */
export const stepOutcomeSchema = z.union([
  z.looseObject({ model: z.string(), response: z.unknown() }),
  z.looseObject({ model: z.string(), error: itemErrorSchema }),
]);
export type StepOutcome = z.infer<typeof stepOutcomeSchema>;

/**
 * A pipeline result line's `steps`: each step that ran, by name: one outcome, or for a fan-out step
 * the list of its branches' outcomes. The line's top-level `response` (or `error`) is the last
 * step's: for a fan-out step, the list of its answers.
 */
export const stepsOfLineSchema = z.record(
  z.string(),
  z.union([stepOutcomeSchema, z.array(stepOutcomeSchema)]),
);

const lineHead = { key: z.string(), index: count };
/**
 * A succeeded line's `metadata` (the Batch API's inlined responses carry one too): only on an answer
 * served from the response cache, `{cached: true, cachedFromJob}` (the job whose call paid for it).
 */
const lineMetadata = z
  .looseObject({ cached: z.boolean().optional(), cachedFromJob: z.string().optional() })
  .optional();
/** The head of a line whose input named its key `custom_id` (OpenAI's Batch format): echoed as it came. */
const customIdHead = { custom_id: z.string(), index: count };

/**
 * One result line: identical for realtime, batch and bucket jobs; the Gemini Batch API's own output
 * shape plus the input `index`. `response` is a GenerateContentResponse, passed through as Gemini
 * sent it (it must be present: a line without `response` or `error` is not a result). The key is
 * `key`, or `custom_id` when the input line named it so (read either with {@link entryKey}).
 */
export const resultLineSchema = z.union([
  z.looseObject({ ...lineHead, response: z.unknown(), metadata: lineMetadata }),
  z.looseObject({ ...lineHead, error: itemErrorSchema }),
  z.looseObject({ ...customIdHead, response: z.unknown(), metadata: lineMetadata }),
  z.looseObject({ ...customIdHead, error: itemErrorSchema }),
]);
export type ResultLine = Declared<z.infer<typeof resultLineSchema>>;

/** An item that has no outcome yet, as `GET /jobs/{id}/results` lists it. */
export const pendingEntrySchema = z.union([
  z.looseObject({ ...lineHead, state: z.literal('pending') }),
  z.looseObject({ ...customIdHead, state: z.literal('pending') }),
]);
export type PendingEntry = Declared<z.infer<typeof pendingEntrySchema>>;

/** The key of a result line or entry, whichever name (`key`, `custom_id`) it carries. */
export function entryKey(entry: { key: string } | { custom_id: string }): string {
  return 'custom_id' in entry ? entry.custom_id : entry.key;
}

/** A line of `GET /jobs/{id}/results` (page or JSONL): the result line, or the pending item. */
export const resultEntrySchema = z.union([...resultLineSchema.options, ...pendingEntrySchema.options]);
export type ResultEntry = Declared<z.infer<typeof resultEntrySchema>>;

/** `GET /jobs/{id}/results?pageToken=&pageSize=`: entries in input order. */
export const resultsPageSchema = z.looseObject({
  results: z.array(resultEntrySchema),
  nextPageToken: z.string().min(1).optional(),
});
export type ResultsPage = Declared<z.infer<typeof resultsPageSchema>>;
