/**
 * The jobs API contract, request half: what a client may send to `POST /jobs` (and what a bucket
 * line holds). Strict: every unknown field is named. Re-exported by ./jobs.ts, the contract's entry.
 */
import { z } from 'zod';
import { pipelineFieldsSchema } from './pipeline.js';

/** Limits of one `POST /jobs`. Bigger sets go through a bucket file. */
export const LIMITS = {
  maxBodyBytes: 32 * 1024 * 1024,
  maxItems: 50_000,
  /** A stored item must fit one Firestore document (1 MiB) with room for its result. */
  maxItemBytes: 256 * 1024,
  maxMediaPerItem: 16,
  maxKeyLength: 256,
} as const;

/** A part of a Gemini `Content` in the REST shape; other part kinds pass through unchecked. */
export const partSchema = z.looseObject({
  text: z.string().optional(),
  inlineData: z.object({ mimeType: z.string().min(1), data: z.string().min(1) }).optional(),
  fileData: z.object({ mimeType: z.string().optional(), fileUri: z.string().min(1) }).optional(),
});

export const contentSchema = z.object({
  role: z.enum(['user', 'model']).optional(),
  parts: z.array(partSchema).min(1, 'needs at least one part'),
});

/** A GenerateContentRequest in the REST shape (the Batch API's line format). */
export const generateContentRequestSchema = z.looseObject({
  /**
   * The model a Batch API line names (`models/…` or bare). Checked against the job's model, never
   * sent: the model is in the call's URL.
   */
  model: z.string().min(1).optional(),
  contents: z.array(contentSchema).min(1, 'needs at least one content'),
  systemInstruction: contentSchema.optional(),
  generationConfig: z.record(z.string(), z.unknown()).optional(),
  safetySettings: z.array(z.unknown()).optional(),
  tools: z.array(z.unknown()).optional(),
  toolConfig: z.unknown().optional(),
  cachedContent: z.string().optional(),
});

/** Media the worker fetches and sends inline: an https URL or a gs:// object. */
export const mediaSchema = z
  .object({
    url: z.url({ protocol: /^https$/, error: 'must be an https URL' }).optional(),
    gcsUri: z
      .string()
      .regex(/^gs:\/\/[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]\/.+$/, 'must look like gs://bucket/object')
      .optional(),
    mimeType: z
      .string()
      .regex(/^[a-z]+\/[a-z0-9.+-]+$/i, 'must be a MIME type such as image/png')
      .optional(),
  })
  .refine((m) => Boolean(m.url) !== Boolean(m.gcsUri), { message: 'needs exactly one of url or gcsUri' });

/**
 * The names a line may give its key by: `key` (Gemini's Batch API files) or `custom_id` (OpenAI's
 * Batch files). A result line names its key the way its input line did.
 */
export const keyFieldSchema = z.enum(['key', 'custom_id']);
export type KeyField = z.infer<typeof keyFieldSchema>;

/**
 * One item of `requests`: a prompt or a full request, with an optional key (as `key` or
 * `custom_id`, not both) and media.
 */
export const requestItemSchema = z
  .object({
    key: z.string().min(1).max(LIMITS.maxKeyLength).optional(),
    custom_id: z.string().min(1).max(LIMITS.maxKeyLength).optional(),
    prompt: z.string().min(1, 'must not be empty').optional(),
    request: generateContentRequestSchema.optional(),
    media: z.array(mediaSchema).max(LIMITS.maxMediaPerItem).optional(),
  })
  // Strict, as the module says: an OpenAI envelope field (`method`, `url`) or a typo is named, not
  // dropped unseen.
  .strict()
  .refine((r) => Boolean(r.prompt) !== Boolean(r.request), {
    message: 'needs exactly one of prompt or request',
  })
  .refine((r) => r.key === undefined || r.custom_id === undefined, {
    message: 'names its key twice: give key or custom_id, not both',
  });

/**
 * The body of `POST /jobs`. Exactly one of `prompts` / `requests` is checked by the handler (with
 * its own message), as are duplicate keys, the model and the size of each item.
 */
export const createJobSchema = z
  .object({
    model: z.string().min(1).optional(),
    mode: z.enum(['auto', 'realtime', 'flex', 'batch']).default('auto'),
    /**
     * When the results are needed: a duration from now (`30m`, `6h`, `1h30m`) or an ISO time. A
     * `flex` job's items go standard once it leaves less than Flex's latency.
     */
    deadline: z.string().min(1).max(64).optional(),
    /**
     * The most the job may spend, in USD: once what it spent plus the estimates in flight would pass
     * it, items not yet sent end `cancelled` with reason `budget` (see README, "Budgets").
     */
    maxCostUsd: z.number().positive().max(1_000_000).optional(),
    config: z.record(z.string(), z.unknown()).optional(),
    systemInstruction: z.union([z.string().min(1), contentSchema]).optional(),
    prompts: z.array(z.string().min(1, 'must not be empty')).optional(),
    requests: z.array(requestItemSchema).optional(),
    /**
     * POSTed the job's end once it is terminal, signed with the owner's key (Standard Webhooks, see
     * webhooks.ts). https (the local cloud also takes http); a literal non-public address is refused
     * at submit.
     */
    callbackUrl: z
      .url({ protocol: /^https?$/, error: 'must be an https URL' })
      .max(2048, 'must be at most 2048 characters')
      .refine((u) => !/^[a-z]+:\/\/[^/?#]*@/i.test(u), 'must not carry credentials (user:password@)')
      .optional(),
    /** Batch jobs: items of a batch that fails, expires or stays pending go `realtime` (default) or `fail`. */
    onBatchFailure: z.enum(['realtime', 'fail']).optional(),
    /**
     * `false`: the job's items neither read nor fill the response cache (every item calls Gemini).
     * By default an item whose request the same owner sent within RESPONSE_CACHE_TTL_HOURS is
     * answered from the cache, at no cost.
     */
    cache: z.boolean().optional(),
    /**
     * A pipeline: each item through these steps (./pipeline.ts). Lazy: pipeline.ts reads this module's
     * schemas, so neither may use the other's while the modules load.
     */
    steps: z.lazy(() => pipelineFieldsSchema.shape.steps.unwrap()).optional(),
    onStepError: z.lazy(() => pipelineFieldsSchema.shape.onStepError.unwrap()).optional(),
  })
  .strict();

/** What a client sends to `POST /jobs` (`mode` may be left out). */
export type CreateJobRequest = z.input<typeof createJobSchema>;
export type RequestItem = z.input<typeof requestItemSchema>;

/**
 * The body of `POST /jobs/{id}/retry`: empty (`{}`) to re-run the failed and cancelled items, or a
 * new prompt set (`prompts` or `requests`, with the `config` and `systemInstruction` its requests are
 * built with) to run only the lines whose request changed. The model and mode are the original's.
 */
export const retryJobSchema = createJobSchema
  .pick({ config: true, systemInstruction: true, prompts: true, requests: true })
  .strict();
export type RetryJobRequest = z.input<typeof retryJobSchema>;
