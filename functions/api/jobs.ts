/**
 * The jobs API contract (DESIGN "HTTP API" and "Result line"): one zod schema per request and answer
 * of the ingest function, and the types derived from them. The functions, the CLI, the tests and the
 * benchmark all import these, so a change to the wire shape is made once and seen everywhere.
 *
 * Pure zod: no I/O and nothing Node-only, so core and browser-side code may import it.
 *
 * Answers are parsed with `looseObject`: a field the server adds later is kept at run time and never
 * breaks a client. The exported answer types list only the declared fields (see {@link Declared}), so
 * a server building a `JobView` cannot slip in an undeclared field, and a client reading one cannot
 * misspell it. Requests are the opposite: `createJobSchema` is strict and names every unknown field.
 */
import { z } from 'zod';
import type { Declared } from './declared.js';
import { implicitCacheViewSchema } from './implicit-cache.js';
import { stepViewSchema } from './pipeline.js';

export type { Declared } from './declared.js';
// The request half (POST /jobs bodies) lives in ./job-request.ts, the result lines in ./results.ts;
// both are part of this contract. The SSE stream's events are in ./events.ts.
export * from './job-request.js';
export * from './pipeline.js';
export * from './results.js';

// Jobs as clients see them

export const jobStatusSchema = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']);
/** `succeeded` means every item is terminal; some may have failed (see `counts`). */
export type JobStatus = z.infer<typeof jobStatusSchema>;

export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export function isTerminalStatus(status: JobStatus): boolean {
  return TERMINAL_JOB_STATUSES.includes(status);
}

/**
 * The path a job took (the `mode` a request asks for may also be `auto`): `realtime` (the queues, the
 * standard tier), `flex` (the queues, Gemini's Flex tier: half price, minutes of latency) or `batch`.
 */
export const jobModeSchema = z.enum(['realtime', 'flex', 'batch']);
export type JobMode = z.infer<typeof jobModeSchema>;

const count = z.number().int().nonnegative();

export const jobCountsSchema = z.looseObject({
  total: count,
  succeeded: count,
  failed: count,
  cancelled: count,
  pending: count,
});
export type JobCounts = Declared<z.infer<typeof jobCountsSchema>>;

export const usageSchema = z.looseObject({
  promptTokens: count,
  outputTokens: count,
});
export type Usage = Declared<z.infer<typeof usageSchema>>;

/** Items answered at one tier, and what they cost there. */
export const tierTotalsSchema = z.looseObject({ items: count, costUsd: z.number().nonnegative() });
export type TierTotalsView = Declared<z.infer<typeof tierTotalsSchema>>;

/** The links of a job's resources, relative to the ingest URL. */
export const jobLinksSchema = z.looseObject({
  self: z.string(),
  results: z.string(),
  events: z.string(),
  cancel: z.string(),
});
export type JobLinks = Declared<z.infer<typeof jobLinksSchema>>;

/** The paths of a job's resources: the one place they are spelled. */
export function linksFor(id: string): JobLinks {
  const self = `/jobs/${encodeURIComponent(id)}`;
  return { self, results: `${self}/results`, events: `${self}/events`, cancel: `${self}/cancel` };
}

/**
 * The answer of `POST /jobs`: `202` with status `queued` for a new job; `200` with the job's current
 * status when an `Idempotency-Key` replays an earlier one.
 */
export const createdJobSchema = z.looseObject({
  id: z.string().min(1),
  status: jobStatusSchema,
  mode: jobModeSchema,
  total: count,
  links: jobLinksSchema,
});
export type CreatedJob = Declared<z.infer<typeof createdJobSchema>>;

/** What the reconciler had to do for a job: a stuck job is never silent. */
export const reconcileCountsSchema = z.looseObject({
  /** Items whose lease ran out with no outcome, given a new task. */
  retasked: count,
  /** Items failed after too many such rounds. */
  failed: count,
  /**
   * Items with no lease that no task delivered by their due time (`dueByMs`: a task lost before it
   * reached the worker, a worker outage longer than the queue's retries), given a new task.
   */
  orphans: count,
  /** Times enqueuing was started again after it stalled. */
  reenqueued: count,
  /** Cancels that stopped halfway, finished. */
  cancelsResumed: count,
  /** Jobs with nothing pending finished by the sweep. */
  finishes: count,
});
export type ReconcileCounts = Declared<z.infer<typeof reconcileCountsSchema>>;

export const jobPathsSchema = z.looseObject({ realtime: count, batch: count });
export type JobPaths = Declared<z.infer<typeof jobPathsSchema>>;

/**
 * One batch of a batch job. `name` is the upstream batch (`batches/…`, null until created);
 * `state` is Gemini's (`PENDING`, `RUNNING`, `SUCCEEDED`, `FAILED`, `CANCELLED`, `EXPIRED`), or
 * `STAGED` before creation; `stats` are Gemini's `batchStats` as numbers.
 */
export const batchViewSchema = z.looseObject({
  name: z.string().nullable(),
  state: z.string(),
  items: count,
  stats: z
    .looseObject({
      requestCount: count,
      successfulRequestCount: count,
      failedRequestCount: count,
      pendingRequestCount: count,
    })
    .nullable(),
  /** Why its items went back to the realtime path (or failed), when they did. */
  fallback: z.string().nullable().optional(),
  /** The last step's error (upload, poll, collect) while the scheduler tick tries it again. */
  lastError: z.string().nullable().optional(),
});
export type BatchView = Declared<z.infer<typeof batchViewSchema>>;

/**
 * A job's callback once the job has ended (jobs with a `callbackUrl` only): `pending` while it is
 * being tried (`nextAttemptAt` says when next), `delivered` once the receiver answered 2xx, `failed`
 * when the receiver's answer cannot change (a 4xx, a refused URL) or the retry window ran out.
 * Delivery is at least once: receivers dedupe on its `webhook-id` (see webhooks.ts).
 */
export const callbackViewSchema = z.looseObject({
  state: z.enum(['pending', 'delivered', 'failed']),
  attempts: count,
  lastError: z.string().nullable(),
  nextAttemptAt: z.iso.datetime().nullable(),
  deliveredAt: z.iso.datetime().nullable(),
});
export type CallbackView = Declared<z.infer<typeof callbackViewSchema>>;

/**
 * `GET /jobs/{id}`, the answer of `POST /jobs/{id}/cancel`, the SSE `done` event and the callback body.
 * Fields the job lifecycle adds (batches, reconciliation, …) are declared here when the server sends
 * them; until then they pass through untyped.
 */
export const jobViewSchema = z.looseObject({
  id: z.string().min(1),
  status: jobStatusSchema,
  mode: jobModeSchema,
  model: z.string(),
  /** Where the job came from: `api`, or `gs://bucket/inbox/…` for bucket jobs. */
  source: z.string(),
  counts: jobCountsSchema,
  usage: usageSchema,
  costUsd: z.number().nonnegative(),
  /**
   * Answered items and their cost per tier that served them (`standard`, `flex`, `priority`,
   * `batch`; only tiers with items). Absent for jobs recorded before tiers were.
   */
  tiers: z.partialRecord(z.enum(['standard', 'flex', 'priority', 'batch']), tierTotalsSchema).optional(),
  /** When the results are needed (the request's `deadline`), ISO 8601. */
  deadline: z.iso.datetime().optional(),
  /** What the answers would have cost all at standard, minus what they cost (Priority makes it negative). */
  savedUsd: z.number().optional(),
  /**
   * Items answered from the response cache (no Gemini call, cost 0) and what those answers cost the
   * jobs that paid for them. Absent when there were none.
   */
  cache: z.looseObject({ hits: count, savedUsd: z.number().nonnegative() }).optional(),
  /** Gemini's implicit cache: the share of answers that read cached input, the tokens, the saving. */
  implicitCache: implicitCacheViewSchema.optional(),
  createdAt: z.iso.datetime(),
  startedAt: z.iso.datetime().nullable(),
  finishedAt: z.iso.datetime().nullable(),
  /** Why the job is waiting, e.g. the model's daily quota is spent. */
  notice: z.string().nullable(),
  reconciled: reconcileCountsSchema,
  /** How many items took each path: realtime (the queues) and batch (the Gemini Batch API). */
  paths: jobPathsSchema.optional(),
  /** Batch jobs: each batch with its upstream state and progress. */
  batches: z.array(batchViewSchema).optional(),
  /** Its callback's delivery, once the job has ended (not in the callback's own body). */
  callback: callbackViewSchema.optional(),
  /**
   * The 429s Gemini answered the job's calls, by model and by the quotaId their QuotaFailure named
   * (`GenerateRequestsPerMinutePerProjectPerModel`, `…InputTokensPerModelPerMinute`, per-day ones;
   * `unknown` for a 429 without details). Absent when there were none.
   */
  quota429s: z.record(z.string(), z.record(z.string(), z.number().int().nonnegative())).optional(),
  /** The model's quota (from infra/quotas.json), which the request rate is drawn against. */
  quota: z.object({ rpm: z.number().positive(), tpm: z.number().positive() }).nullable().optional(),
  /** A re-run (`POST /jobs/{id}/retry`): the job whose failed and cancelled items it runs again. */
  retryOf: z.string().optional(),
  /** The jobs that re-ran this one's items, oldest first. Absent when there were none. */
  retries: z.array(z.string()).optional(),
  /**
   * A job with `maxCostUsd`: its budget, what it has spent, and whether the budget stopped items
   * (those not yet sent end `cancelled`, their error's `reason` is `budget`).
   */
  budget: z
    .object({ maxCostUsd: z.number().positive(), spentUsd: z.number().nonnegative(), stopped: z.boolean() })
    .optional(),
  /** A pipeline (a job with `steps`): each step's progress, tokens and cost, in step order. */
  steps: z.array(stepViewSchema).optional(),
});
export type JobView = Declared<z.infer<typeof jobViewSchema>>;

/**
 * The caller as an owner of objects in the bucket: `prefix` is its folder name under `media/`,
 * `inbox/` and `results/` (the first 32 hex digits of SHA-256 of `id`); `mediaLocations` are the
 * `gs://` prefixes its media may come from (its own folders, then the shared samples).
 */
export const ownerViewSchema = z.looseObject({
  id: z.string().min(1),
  prefix: z.string().regex(/^[0-9a-f]{32}$/),
  mediaLocations: z.array(z.string()),
});
export type OwnerView = Declared<z.infer<typeof ownerViewSchema>>;

/** `GET /jobs`: the caller's jobs, newest first, and the caller as an owner (`owner`). */
export const jobListSchema = z.looseObject({
  jobs: z.array(jobViewSchema),
  nextPageToken: z.string().optional(),
  owner: ownerViewSchema.optional(),
});
export type JobList = Declared<z.infer<typeof jobListSchema>>;

/**
 * `POST /jobs?dryRun=true`: what the job would take, with nothing stored or called: the path it
 * would take, its items, its input tokens (the plan's estimate) and output tokens at most (when
 * every item caps them), its cost on each tier (with the output only when capped), and the least
 * time the model's quota allows for it on the queues.
 */
export const jobEstimateSchema = z.looseObject({
  dryRun: z.literal(true),
  model: z.string(),
  mode: jobModeSchema,
  items: count,
  tokens: z.looseObject({ input: count, outputAtMost: count.nullable(), countedBy: z.string() }),
  costUsd: z.partialRecord(z.enum(['standard', 'flex', 'priority', 'batch']), z.number().nonnegative()),
  costIncludesOutput: z.boolean(),
  quotaSeconds: z.number().nonnegative(),
  deadline: z.iso.datetime().optional(),
});
export type JobEstimate = Declared<z.infer<typeof jobEstimateSchema>>;

// Errors

/** A field-level problem in a request, as returned in `error.details`. */
export const fieldProblemSchema = z.looseObject({ field: z.string(), message: z.string() });
export type FieldProblem = Declared<z.infer<typeof fieldProblemSchema>>;

/**
 * Every 4xx/5xx body, whoever produces it: `code` is the HTTP status, `status` the canonical Google
 * status name. Validation errors list each bad field in `details` as {@link FieldProblem}s.
 */
export const errorBodySchema = z.looseObject({
  error: z.looseObject({
    code: z.number().int(),
    status: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ErrorBody = Declared<z.infer<typeof errorBodySchema>>;
