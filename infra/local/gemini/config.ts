import { z } from 'zod';

/** Models the stand-in knows when nothing else is configured. */
export const DEFAULT_MODELS = [
  'gemini-2.5-flash',
  'gemini-2.5-flash-lite',
  'gemini-2.5-pro',
  'gemini-2.0-flash',
];

/** A limit of `null` (or an absent one) means "not enforced". */
const limit = z.number().int().positive().nullable().optional();

/** Per-model quota, as the Gemini Developer API enforces it per project and model. */
export const modelQuotaSchema = z.object({
  /** Requests per rolling 60 s window (realtime generateContent / streamGenerateContent). */
  rpm: limit,
  /** Input (prompt) tokens per rolling 60 s window, by the stand-in's token rule. */
  tpm: limit,
  /** Requests per rolling 24 h window. */
  rpd: limit,
});

/** Latency added before a realtime answer: a fixed number of ms, or mean ± uniform jitter. */
export const latencySchema = z.union([
  z.number().nonnegative(),
  z.object({ meanMs: z.number().nonnegative(), jitterMs: z.number().nonnegative().default(0) }),
]);

const share = z.number().min(0).max(1);

const MIB = 1024 * 1024;
/** The SDK's upload chunk, which the Files API's announced granularity divides. */
const SDK_CHUNK_BYTES = 8 * MIB;
const FILE_LIMIT_BYTES = 2 * 1024 * MIB;
const PROJECT_LIMIT_BYTES = 20 * 1024 * MIB;

/** Batch input tokens a model may have enqueued: one cap for every model, or per model (`*` = others). */
export const enqueuedTokenLimitSchema = z.union([
  z.number().int().positive(),
  z.record(z.string(), z.number().int().positive().nullable()),
]);

/** Shares of admitted realtime requests given each random fault. */
export const faultSharesSchema = z.object({
  internalShare: share.default(0),
  unavailableShare: share.default(0),
  timeoutShare: share.default(0),
  malformedShare: share.default(0),
});

/** The whole runtime configuration; every field has a default, so `{}` is a valid input. */
export const geminiStandInConfigSchema = z.object({
  /** Model ids (without `models/`) that exist; anything else is 404 NOT_FOUND. */
  models: z.array(z.string().min(1)).default(DEFAULT_MODELS),
  /** Seed of the PRNG behind random faults, failing batch lines and output shuffling. */
  seed: z.number().int().default(1),
  /** Which quota metric / quotaId names the 429 bodies carry. */
  quotaTier: z.enum(['paid', 'free']).default('paid'),
  /** model id → limits. Models absent here are unlimited. */
  quotas: z.record(z.string(), modelQuotaSchema).default({}),
  /** model id (or `*` for every model) → latency. */
  latency: z.record(z.string(), latencySchema).default({ '*': 0 }),
  faults: z
    .object({
      /** Share of admitted realtime requests answered 500 INTERNAL. */
      internalShare: share.default(0),
      /** Share answered 503 UNAVAILABLE ("The model is overloaded..."). */
      unavailableShare: share.default(0),
      /** Share held open for `timeoutMs`, then answered 504 DEADLINE_EXCEEDED. */
      timeoutShare: share.default(0),
      /** Share answered 200 with a body that is not valid JSON. */
      malformedShare: share.default(0),
      /** How long a timed-out request is held open. */
      timeoutMs: z.number().int().nonnegative().default(30_000),
      /** RetryInfo.retryDelay (seconds) in the 429s that `[[fault:429…]]` prompt markers produce. */
      markerRetryDelaySeconds: z.number().int().nonnegative().default(1),
      /**
       * Fault shares for one model, replacing the shares above for it: tests that run in parallel
       * can then give only their own model faults.
       */
      byModel: z.record(z.string(), faultSharesSchema).default({}),
    })
    .prefault({}),
  files: z
    .object({
      /**
       * The `x-goog-upload-chunk-granularity` an upload start announces: every `upload` chunk but the
       * one that finalizes must be a multiple of it (the SDK sends 8 MiB chunks).
       */
      chunkGranularity: z.number().int().positive().default(SDK_CHUNK_BYTES),
      /** Largest file an upload may reach (upstream: 2 GB a file). */
      maxFileBytes: z.number().int().positive().default(FILE_LIMIT_BYTES),
      /** Bytes every stored file and open upload may hold together (upstream: 20 GB a project). */
      maxProjectBytes: z.number().int().positive().default(PROJECT_LIMIT_BYTES),
    })
    .prefault({}),
  batch: z
    .object({
      /** Time a new batch stays BATCH_STATE_PENDING. */
      pendingMs: z.number().int().nonnegative().default(200),
      /** Time it then stays BATCH_STATE_RUNNING before its results exist. */
      runningMs: z.number().int().nonnegative().default(1000),
      /** Share of batch lines answered with an error line instead of a response. */
      failedLineShare: share.default(0),
      /**
       * Forces the outcome of every batch that finishes running from now on; `null` lets each batch
       * succeed unless its displayName carries `[[batch:fail]]` or `[[batch:expire]]`.
       */
      forceOutcome: z.enum(['fail', 'expire']).nullable().default(null),
      /** Most batches (of every model) that may be PENDING or RUNNING at once; one more is a 429. */
      maxConcurrent: z.number().int().positive().default(100),
      /**
       * Input tokens (by the token rule) a model's PENDING and RUNNING batches may hold together; a
       * batch that would go over is a 429. A number caps every model, a record caps the models it
       * names (`*` for the others); `null` (the default) caps nothing.
       */
      enqueuedTokenLimit: enqueuedTokenLimitSchema.nullable().default(null),
    })
    .prefault({}),
  /** Number of SSE chunks a streamed answer is split into (at most; short answers send fewer). */
  streamChunks: z.number().int().positive().default(3),
});

/** The validated configuration with every default filled in. */
export type GeminiStandInConfig = z.infer<typeof geminiStandInConfigSchema>;
/** Input form of the configuration (what a caller may pass; defaults are optional). */
export type GeminiStandInConfigInput = z.input<typeof geminiStandInConfigSchema>;
/** Quota limits of one model. */
export type ModelQuota = z.infer<typeof modelQuotaSchema>;
/** Latency of one model. */
export type LatencySpec = z.infer<typeof latencySchema>;

/** Every field optional, recursively; arrays are replaced whole, never merged. */
export type DeepPartial<T> = T extends unknown[]
  ? T
  : T extends Record<string, unknown>
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** A partial configuration, merged into the current one by `configure`. */
export type GeminiStandInConfigPatch = DeepPartial<GeminiStandInConfig>;

/** Thrown when a configuration (or a patch once merged) does not validate. */
export class StandInConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StandInConfigError';
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep-merges `patch` into `base`: objects merge key by key, arrays and scalars replace. */
export function deepMerge(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(patch)) return patch === undefined ? base : patch;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    out[key] = deepMerge(base[key], value);
  }
  return out;
}

/** Validates `input` (anything JSON-like) into a full configuration, naming each bad field. */
export function parseConfig(input: unknown): GeminiStandInConfig {
  const result = geminiStandInConfigSchema.safeParse(input ?? {});
  if (!result.success)
    throw new StandInConfigError(`invalid stand-in config: ${z.prettifyError(result.error)}`);
  return result.data;
}

/** Merges a partial configuration into a full one and validates the result. */
export function mergeConfig(base: GeminiStandInConfig, patch: unknown): GeminiStandInConfig {
  return parseConfig(deepMerge(base, patch));
}
