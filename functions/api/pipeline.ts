/**
 * The jobs API contract for pipelines (a job's `steps`): what a client sends, the per-step part of
 * the job view, the pipeline result line and the per-step SSE event. Re-exported by ./jobs.ts.
 *
 * A pipeline runs each input item through its steps in order (`+` in GenAI Processors); a step that
 * names several models or prompt variants sends the same input to each at once (`//`), each model at
 * its own quota on its own queue. Each (item, step, branch) is a unit of work with the guarantees of
 * an ordinary item; step n+1 of an item starts when its step n ends.
 *
 * What the service does with them (its contract, README "Pipelines"):
 * - A step fails when any of its branches failed (its error is the first failed branch's, its
 *   message prefixed `step {name}: `). With `onStepError: "fail"` the item ends there, failed with
 *   that error, and its line's `steps` holds the steps that ran; with `"continue"` the later steps
 *   run, and a failed step renders as an empty string in their templates. The item's outcome is the
 *   last step's: its answer (a fan-out step's: the list of its branches' answers) or its error.
 * - A fan-out step's `{{name}}` renders every answer, each headed `Answer n (model):` and separated
 *   by a blank line. A JSON step's answer is checked against its schema (one repair turn, then the
 *   step's error `SCHEMA_MISMATCH`); a field that is not a string renders as JSON, a missing one as
 *   an empty string. A step's `config` is merged over the job's `config`; its `systemInstruction`
 *   replaces the job's.
 * - Paths: a job with steps runs on the realtime path, or with `mode: "batch"` through the Batch API
 *   (one batch per step and model, once every item's step before has ended); `auto` goes batch when
 *   every model of its steps would for an ordinary job of that size and deadline. `"flex"` is a 400
 *   (not offered for pipelines yet), as are `maxCostUsd` with steps, a dry run
 *   (`?dryRun=true`) of a job with steps, and a retry (`POST /jobs/{id}/retry`) of one.
 * - The job view: `model` is the first step's (first) model; `counts`, `usage` and `costUsd` count
 *   items (an item ends when its pipeline does) and the tokens and cost of all its steps; `steps`
 *   has each step's units. Once the job has ended, units that never ran (their item ended at an
 *   earlier step, or the job was cancelled) count as cancelled.
 * - Events: a `step` event (`stepEventSchema`) per unit as it ends, before its item's `result`;
 *   a step event's id is `{micros}.{itemId}.s{step}b{branch}` and resumes with `Last-Event-ID`.
 */
import { z } from 'zod';
import { contentSchema } from './job-request.js';

/** A step's name: what later templates call it by (`{{extract}}`, `{{extract.title}}`). */
export const stepNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,39}$/, 'must be 1-40 characters: a lowercase letter, then letters, digits or _')
  .refine((n) => n !== 'input', '`input` names the item itself');

/**
 * One step of `steps`. Its prompt is a template: `{{input}}` is the item's prompt (the text of its
 * request's parts), `{{name}}` an earlier step's answer text, `{{name.field.path}}` a field of an
 * earlier step's JSON answer (a step with a JSON schema), and for a fan-out step `{{name}}` is the
 * list of its answers and `{{name.0}}` … the answer of each branch (models first, then prompt
 * variants). A step without `prompt`/`prompts` sends the item's own request unchanged (media
 * included). Checked at submit: unknown names, names of later steps (cycles) are 400 with the field.
 */
export const pipelineStepSchema = z
  .object({
    name: stepNameSchema,
    /** The step's model; defaults to the job's `model`. */
    model: z.string().min(1).optional(),
    /** Fan-out: the same input to each model, each at its own quota. */
    models: z.array(z.string().min(1)).min(1).max(8).optional(),
    prompt: z.string().min(1).optional(),
    /** Fan-out: several prompt variants of the same input. */
    prompts: z.array(z.string().min(1)).min(1).max(8).optional(),
    /** GenerationConfig; `responseMimeType: application/json` with a schema makes the answer checked. */
    config: z.record(z.string(), z.unknown()).optional(),
    // Lazy: ./job-request.ts reads this module's schemas too (see its `steps`).
    systemInstruction: z.union([z.string().min(1), z.lazy(() => contentSchema)]).optional(),
  })
  .strict()
  .refine((s) => s.model === undefined || s.models === undefined, {
    message: 'give model or models, not both',
  })
  .refine((s) => s.prompt === undefined || s.prompts === undefined, {
    message: 'give prompt or prompts, not both',
  });
export type PipelineStep = z.input<typeof pipelineStepSchema>;

/** `steps` and `onStepError` of `POST /jobs` (and of a bucket file's header line). */
export const pipelineFieldsSchema = z.object({
  steps: z.array(pipelineStepSchema).min(1).max(10).optional(),
  /** `fail` (default): a failed step ends its item with that step's error; `continue`: later steps run. */
  onStepError: z.enum(['fail', 'continue']).optional(),
});
export type PipelineFields = z.input<typeof pipelineFieldsSchema>;

const count = z.number().int().nonnegative();

/** The job view's `steps`: each step's progress, tokens and cost, in step order, and per model. */
export const stepViewSchema = z.looseObject({
  name: z.string(),
  models: z.array(z.string()).min(1),
  /** Units of this step: items × branches; `pending` includes units whose earlier step has not ended. */
  counts: z.looseObject({ total: count, succeeded: count, failed: count, cancelled: count, pending: count }),
  usage: z.looseObject({ promptTokens: count, outputTokens: count }),
  costUsd: z.number().nonnegative(),
  /** Per model of the step (fan-out steps have several). */
  byModel: z
    .record(
      z.string(),
      z.looseObject({
        succeeded: count,
        failed: count,
        usage: z.looseObject({ promptTokens: count, outputTokens: count }),
        costUsd: z.number().nonnegative(),
      }),
    )
    .optional(),
});
export type StepView = z.infer<typeof stepViewSchema>;
