import { z } from 'zod';
import { type AdaptiveRateSettings, adaptiveRateSchema, resolveAutoRpm } from './quotas-adaptive.js';

const positiveInt = z.number().int().positive();

/**
 * The most items one task may carry: a task's items run side by side in one request, so this bounds
 * what one delivery holds in memory and in flight (and keeps its payload of ids far below 100 KB).
 */
export const MAX_ITEMS_PER_TASK = 50;

/**
 * What one request may ask for, so that a prompt set cannot multiply its own cost: every candidate
 * and every output token is billed, Google Search and code execution tools are billed on top, and a
 * `cachedContent` reference bills (and reads) a cache. Per model over the top-level figures.
 */
const requestLimitsSchema = z.object({
  maxOutputTokens: positiveInt.default(65_536),
  maxCandidateCount: positiveInt.default(1),
  /** `none`: no tools; `functions`: function declarations only; `all`: built-in tools too. */
  tools: z.enum(['none', 'functions', 'all']).default('functions'),
  cachedContent: z.boolean().default(false),
});

/**
 * Where `mode: "auto"` sends a job that names a `deadline`, by the time it leaves: the Batch API
 * from `batchMinMs` on (Google's turnaround target is 24 hours) for a set of `batchMinItems` or
 * more, Flex from `flexMinMs` on (its latency is minutes), standard realtime below.
 */
const routingSchema = z.object({
  flexMinMs: positiveInt.default(1_800_000),
  batchMinMs: positiveInt.default(86_400_000),
});

const modelQuotaSchema = z.object({
  /**
   * Requests per minute; `"auto"` when the tier's limit is unknown: the adaptive rate
   * (core/adaptive-rate.ts) governs under `maxRpm`, the queue's dispatch rate.
   */
  rpm: z.union([positiveInt, z.literal('auto')]),
  /** With `rpm: "auto"`: the ceiling (default Cloud Tasks' 500 a second). */
  maxRpm: positiveInt.optional(),
  tpm: positiveInt,
  rpd: positiveInt.nullable(),
  batch: z.boolean(),
  /** Jobs of at least this many items go through the Batch API when mode is `auto` (else the top-level figure). */
  batchMinItems: positiveInt.optional(),
  /**
   * The model's cap on tokens enqueued in batches at once (per tier, upstream). One batch never holds
   * more; a set over it is split, and a create that would go over waits for the next tick.
   */
  batchEnqueuedTokens: positiveInt.optional(),
  /** Overrides of the top-level `routing` thresholds for this model. */
  routing: routingSchema.partial().optional(),
  /** Overrides of the top-level `requestLimits` for this model. */
  requestLimits: requestLimitsSchema.partial().optional(),
  /**
   * The fewest leading tokens Gemini's implicit cache serves for this model (the caching page lists
   * 1,024 for 2.5 Flash and 4,096 for 2.5 Pro). Items sharing a prefix this long are planned back
   * to back (`core/prefix-order.ts`). Absent: the model has no implicit cache to order for.
   */
  implicitCacheMinTokens: positiveInt.optional(),
  price: z.object({
    inputPerMillion: z.number().nonnegative(),
    /** Output, thinking tokens included. */
    outputPerMillion: z.number().nonnegative(),
    /** Input read from a cache (implicit or explicit); 10% of `inputPerMillion` when absent. */
    cachedInputPerMillion: z.number().nonnegative().optional(),
    /**
     * The prices of a request whose prompt is over `aboveTokens` (2.5 Pro: 200k): every token of
     * that request is billed at them. Models without one have a single price.
     */
    longContext: z
      .object({
        aboveTokens: positiveInt.default(200_000),
        inputPerMillion: z.number().nonnegative(),
        outputPerMillion: z.number().nonnegative(),
        cachedInputPerMillion: z.number().nonnegative().optional(),
      })
      .optional(),
    /** This model's Priority price as a share of standard (else `serviceTiers.priority.priceShare`). */
    priorityShare: z.number().gt(1).optional(),
  }),
});

/**
 * The synchronous service tiers (`config.serviceTier` on generateContent): their share of the
 * standard price, and whether this deployment may use Priority (Tier 2 and 3 projects only).
 */
const serviceTiersSchema = z.object({
  flex: z
    .object({
      /** Flex bills half the standard price. */
      priceShare: z.number().gt(0).lte(1).default(0.5),
      /**
       * The longest a Flex answer is waited for (Google: a target of 1–15 minutes; clients need
       * timeouts of 10 minutes or more). A job whose deadline leaves less than this goes standard.
       */
      latencyMs: positiveInt.default(900_000),
      /** A `flex` job without a `deadline` must be answered within this (then its items go standard). */
      defaultDeadlineMs: positiveInt.default(6 * 3_600_000),
      /** A shed (503) Flex call is tried again after this, doubling per attempt up to `maxBackoffMs`. */
      minBackoffMs: positiveInt.default(10_000),
      maxBackoffMs: positiveInt.default(300_000),
    })
    .prefault({}),
  priority: z
    .object({
      /** Priority bills 75–100% over standard; the 2.5 models' price rows are 1.8×. */
      priceShare: z.number().gt(1).default(1.8),
      /** Priority is capped at this share of the standard limits and served as standard beyond. */
      limitShare: z.number().gt(0).lte(1).default(0.3),
      enabled: z.boolean().default(false),
    })
    .prefault({}),
});

/**
 * `infra/quotas.json`: model → limits and prices. Terraform sizes the queues from it; the code budgets
 * tokens, routes to the Batch API and prices jobs from it. One source of truth.
 */
export const quotasSchema = z
  .object({
    $comment: z.string().optional(),
    /** Where the prices come from and when they were read (the public pricing page). */
    priceSource: z.object({ page: z.url(), checked: z.iso.date(), note: z.string().optional() }).optional(),
    tier: z.string(),
    defaultModel: z.string(),
    batchDiscount: z.number().gt(0).lte(1),
    /** Jobs of at least this many items go through the Batch API when mode is `auto` (per model too). */
    batchMinItems: positiveInt.default(10_000),
    /** Largest input file of one batch (the Files API takes 2 GB a file). */
    batchMaxFileBytes: positiveInt.default(2_000_000_000),
    /** `mode: "auto"` with a deadline: the time left from which Flex, then Batch, are chosen. */
    routing: routingSchema.prefault({}),
    /** Flex and Priority: price shares, Flex's latency, whether Priority may be used. */
    serviceTiers: serviceTiersSchema.prefault({}),
    /**
     * The project's spend limit per rolling window (Gemini's spend-based rate limit: $10 / $50 / $200
     * per 10 minutes for Tier 1 / 2 / 3), shared by every job and model of the deployment; planned on
     * the spend ledger beside requests and tokens (`core/spend-pace.ts`). Absent: no spend pacing.
     */
    spendPer10MinUsd: z.number().positive().optional(),
    /**
     * How the spend is planned: the window's length (600 s upstream; tests shorten it) and the output
     * an item is expected to produce when it sets no `maxOutputTokens` and its job has no answers yet.
     */
    spendPacing: z
      .object({
        windowSeconds: positiveInt.default(600),
        expectedOutputTokens: z.number().int().nonnegative().default(1_000),
      })
      .prefault({}),
    /** Plan items that share a long prefix back to back, for Gemini's implicit cache (true by default). */
    implicitCacheOrder: z.boolean().default(true),
    /** Share of each limit the system plans to use; the rest absorbs retries and clock skew. */
    headroom: z.number().gt(0).lte(1).default(0.98),
    /**
     * How the token plan earns its margin over the estimate from what answers count
     * (`core/token-evidence.ts`): the least margin (`floor`), the standard deviations a window
     * covers (`z`), the answered items a job needs before its evidence is trusted (`minItems`).
     */
    /**
     * How each model's queue ramps up after idling (`DispatchRamp`, core/rate.ts): the plan follows
     * it. Off (false) by default: Cloud Tasks documents no figures; the local cloud's strict profile
     * ramps { startShare: 0.2, seconds: 30, idleSeconds: 60 }. `itemsPerTask`: items a task carries
     * at most while the queue ramps (default ⌈k / startShare⌉; 1 plans at the ramp's rate).
     */
    queueRamp: z
      .union([
        z.literal(false),
        z.object({
          startShare: z.number().gt(0).lte(1),
          seconds: z.number().positive(),
          idleSeconds: z.number().positive(),
          itemsPerTask: z.number().int().min(1).max(MAX_ITEMS_PER_TASK).optional(),
        }),
      ])
      .default(false),
    /**
     * Items one task carries at most (`core/task-groups.ts`); 1 keeps one item a task. Set by the
     * `ITEMS_PER_TASK` variable (config.ts), which Terraform gives the functions and uses to size
     * the queues, so the queues' rates and the plan agree.
     */
    itemsPerTask: z.number().int().min(1).max(MAX_ITEMS_PER_TASK).default(1),
    tokenMargin: z
      .object({
        floor: z.number().min(0).max(1).default(0.01),
        z: z.number().positive().default(3),
        minItems: z.number().int().positive().default(30),
      })
      .prefault({}),
    /** What one request may ask for (see requestLimitsSchema); a model may override each figure. */
    requestLimits: requestLimitsSchema.prefault({}),
    /** Retry policy of every model queue; the worker reads maxAttempts to know a task's last attempt. */
    queue: z
      .object({
        maxAttempts: positiveInt.default(30),
        minBackoffSeconds: z.number().positive().default(1),
        maxBackoffSeconds: z.number().positive().default(300),
        maxDoublings: z.number().int().nonnegative().default(5),
      })
      .prefault({}),
    /** How the adaptive rate of `rpm: "auto"` models (and every model on Vertex AI) moves. */
    adaptiveRate: adaptiveRateSchema.prefault({}),
    models: z.record(
      z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, 'model names are lower-case ids'),
      modelQuotaSchema,
    ),
  })
  .refine((q) => Object.hasOwn(q.models, q.defaultModel), {
    message: 'defaultModel must be one of models',
    path: ['defaultModel'],
  });

/** The quotas file as written (a model's `rpm` may be `"auto"`). */
export type QuotasFile = z.infer<typeof quotasSchema>;
export type Quotas = Omit<QuotasFile, 'models'> & { models: Record<string, ModelQuota> };
/**
 * A model's quota as the code reads it: `rpm` a number (the ceiling where the file says `"auto"`),
 * and `adaptive` (the AIMD settings) where the rate adapts (core/adaptive-rate.ts).
 */
export type ModelQuota = Omit<z.infer<typeof modelQuotaSchema>, 'rpm' | 'maxRpm'> & {
  rpm: number;
  adaptive?: AdaptiveRateSettings;
};
export type RequestLimits = z.infer<typeof requestLimitsSchema>;

/**
 * The model's quota, or undefined for a model the deployment does not serve. An own-property
 * lookup: a model named `constructor` or `__proto__` is not a model.
 */
export function modelQuota(quotas: Quotas, model: string): ModelQuota | undefined {
  return Object.hasOwn(quotas.models, model) ? quotas.models[model] : undefined;
}

/** The request limits of a model: its own figures over the top-level ones. */
export function requestLimitsFor(quotas: Quotas, model: string): RequestLimits {
  return { ...quotas.requestLimits, ...modelQuota(quotas, model)?.requestLimits };
}

/** Validates a quotas document, naming each bad field. */
export function parseQuotas(input: unknown, source = 'quotas'): Quotas {
  const parsed = quotasSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`${source} is not valid:\n${lines.join('\n')}`);
  }
  return { ...parsed.data, models: resolveAutoRpm(parsed.data.models, parsed.data.adaptiveRate) };
}

/** Strips the `models/` prefix users sometimes pass. */
export function normalizeModelName(model: string): string {
  return model.startsWith('models/') ? model.slice('models/'.length) : model;
}

/** The Cloud Tasks queue id of a model: `fanout-` + the model name with dots as hyphens. */
export function queueIdForModel(model: string): string {
  return `fanout-${normalizeModelName(model).replace(/[^a-z0-9-]/g, '-')}`;
}

/** The queue that runs control tasks (resumable enqueuing of big jobs). */
export const CONTROL_QUEUE_ID = 'fanout-control';
