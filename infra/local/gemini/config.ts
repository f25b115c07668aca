import { z } from 'zod';
import { implicitCacheSchema, spendSchema } from './cost-config.js';
import { vertexSchema } from './vertex.js';

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
  /** Share of admitted realtime requests answered 500 INTERNAL. */
  internalShare: share.default(0),
  /** Share answered 503 UNAVAILABLE ("The model is overloaded..."). */
  unavailableShare: share.default(0),
  /** Share held open for `timeoutMs`, then answered 504 DEADLINE_EXCEEDED. */
  timeoutShare: share.default(0),
  /** Share answered 200 with a body that is not valid JSON. */
  malformedShare: share.default(0),
  /** Share whose 200 answer is cut off halfway: the connection drops before its last byte. */
  truncatedShare: share.default(0),
  /**
   * Share answered upstream's capacity 429 (no details) before admission, whatever the quota:
   * it consumes nothing.
   */
  capacityShare: share.default(0),
  /**
   * Share answered a per-minute 429 with its details (QuotaFailure, RetryInfo) before admission,
   * as if other traffic had spent the minute: it consumes nothing.
   */
  quotaShare: share.default(0),
});

const positive = z.number().positive();
const HOUR_MS = 3_600_000;

/**
 * The token rule (tokens.ts applies it; see the README). `estimate` is the product's own estimator
 * (ceil(UTF-8 bytes / 4) per text part, 258 per media part); `modality` counts text by script and
 * media by size, pages and duration, the way upstream's counts differ from that estimate.
 */
export const tokenRuleSchema = z.object({
  rule: z.enum(['estimate', 'modality']).default('estimate'),
  /** `modality`: characters of Latin text (ASCII, Latin-1, Latin Extended, punctuation) per token. */
  latinCharsPerToken: positive.default(4),
  /** `modality`: tokens per CJK character (Han, Hiragana, Katakana, Hangul, CJK punctuation). */
  cjkTokensPerChar: positive.default(1),
  /** `modality`: characters per token of every other script (Cyrillic, Arabic, Devanagari, emoji …). */
  otherCharsPerToken: positive.default(2),
  /** `modality`: tokens of one image tile, of an image whose sides are all <= `smallImageMaxSide`. */
  imageTileTokens: z.number().int().positive().default(258),
  imageTileSide: z.number().int().positive().default(768),
  smallImageMaxSide: z.number().int().positive().default(384),
  /** `modality`: bytes per pixel assumed for an image whose header cannot be read (a square). */
  imageBytesPerPixel: positive.default(0.5),
  /** `modality`: tokens per PDF page; pages counted in the file, else one per `pdfBytesPerPage`. */
  pdfPageTokens: z.number().int().positive().default(258),
  pdfBytesPerPage: positive.default(100_000),
  /** `modality`: audio tokens per second; seconds from a WAV header, else bytes / audioBytesPerSecond. */
  audioTokensPerSecond: positive.default(32),
  audioBytesPerSecond: positive.default(16_000),
  /** `modality`: video tokens per second; seconds are bytes / videoBytesPerSecond. */
  videoTokensPerSecond: positive.default(263),
  videoBytesPerSecond: positive.default(250_000),
  /**
   * The global token skew: every modality's input count is multiplied by it (and rounded up), so tests
   * can put the stand-in's count 30% above or below any estimate. Output counts are not skewed.
   */
  skew: positive.default(1),
  /**
   * Per-request noise on top of the skew: a request's count is further multiplied by 1 + skewNoise × u,
   * u in [-1, 1] drawn from a hash of its `contents` (so countTokens and generateContent agree on a
   * request), so tests can make counts scatter around any estimate as real inputs do.
   */
  skewNoise: z.number().min(0).max(0.9).default(0),
});

/** Extra usage fields and odd answers, by share (markers force them; see generate.ts). */
export const answersSchema = z.object({
  /**
   * Models that think by default (`thoughtsTokenCount`, billed as output; thinking eats into
   * maxOutputTokens). An entry ending in `*` is a prefix; `*` alone is every model.
   */
  thinkingModels: z.array(z.string().min(1)).default([]),
  /** Thinking tokens of one answer when the request sets no thinkingBudget (a budget caps it). */
  thoughtsTokens: z.number().int().nonnegative().default(256),
  /** `promptTokensDetails`, `candidatesTokensDetails`, `cacheTokensDetails` (per modality) in usage. */
  tokenDetails: z.boolean().default(false),
  /** Share of answers whose prompt is blocked: `promptFeedback.blockReason`, no candidates. */
  blockedShare: share.default(0),
  /** Share of answers with a candidate without `content.parts` (finishReason STOP). */
  noPartsShare: share.default(0),
  /** Shares of answers cut short (MAX_TOKENS), or stopped for SAFETY / RECITATION (no content). */
  maxTokensShare: share.default(0),
  safetyShare: share.default(0),
  recitationShare: share.default(0),
  /** Share of answers of 1,024 prompt tokens or more with half their prompt from the implicit cache. */
  cachedShare: share.default(0),
});

/**
 * The synchronous service tiers (`serviceTier` on generateContent; tiers.ts). Upstream (the Flex and
 * Priority inference pages of the Gemini API docs): Flex answers within a target of 1–15 minutes,
 * counts against the ordinary rate limits and is shed with 503 when its capacity is full, never
 * falling back to standard by itself; Priority is capped at 0.3× the standard limits and served as
 * standard beyond, which the `x-gemini-service-tier` response header says.
 */
export const serviceTiersSchema = z.object({
  flex: z
    .object({
      /** A Flex answer waits uniformly between these, times `timeScale` (on top of `latency`). */
      minMs: z.number().int().nonnegative().default(60_000),
      maxMs: z.number().int().nonnegative().default(900_000),
      /** Scales Flex's wait: tests run minutes as milliseconds (0.001: 60–900 ms). */
      timeScale: z.number().nonnegative().default(1),
      /** Flex capacity is full: every Flex request (admitted, so it counts) is answered 503. */
      capacityFull: z.boolean().default(false),
      /** Share of admitted Flex requests shed with 503 when capacity is not full. */
      shedShare: share.default(0),
    })
    .prefault({}),
  priority: z
    .object({
      /** Priority's own limits: this share of the model's RPM, TPM and RPD; beyond, standard. */
      limitShare: share.default(0.3),
    })
    .prefault({}),
});

/**
 * The static (project-level) webhook Gemini pushes batch events to: registered with the
 * WebhookService API, signed per Standard Webhooks with the `whsec_` secret it returned, delivered at
 * least once and retried on anything but a 2xx (ai.google.dev/gemini-api/docs/webhooks). Off while
 * `url` or `secret` is null.
 */
export const webhooksSchema = z.object({
  /** Where events are POSTed (the webhook's `uri`). */
  url: z.url().nullable().default(null),
  /** The signing secret (`whsec_<base64>`), as the registration returns it. */
  secret: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+=*$/)
    .nullable()
    .default(null),
  /** The webhook's `subscribed_events`: a batch's end is sent only when its event is listed. */
  events: z
    .array(z.enum(['batch.succeeded', 'batch.failed', 'batch.cancelled', 'batch.expired']))
    .default(['batch.succeeded', 'batch.failed', 'batch.cancelled', 'batch.expired']),
  /** Copies of each event sent after the first one answered 2xx (at least once: receivers dedupe). */
  duplicates: z.number().int().min(0).max(10).default(0),
  /** Tries of a delivery answered non-2xx (or not at all) before the event is dropped. */
  attempts: z.number().int().min(1).max(20).default(5),
  /** Wait before the second try; doubled for each try after. */
  retryDelayMs: z.number().int().nonnegative().default(500),
});

/** The whole runtime configuration; every field has a default, so `{}` is a valid input. */
export const geminiStandInConfigSchema = z.object({
  /**
   * `ideal` (the default) is the kind stand-in the conformance tests of the basics rely on; `strict`
   * turns on upstream's harder behaviours with realistic defaults (STRICT_PRESET below). Setting a
   * profile (at start or with `configure`) sets every knob of the preset; knobs set alongside win.
   */
  profile: z.enum(['ideal', 'strict']).default('ideal'),
  /** Model ids (without `models/`) that exist; anything else is 404 NOT_FOUND. */
  models: z.array(z.string().min(1)).default(DEFAULT_MODELS),
  /** Seed of the PRNG behind random faults, failing batch lines and output shuffling. */
  seed: z.number().int().default(1),
  /** Which quota metric / quotaId names the 429 bodies carry. */
  quotaTier: z.enum(['paid', 'free']).default('paid'),
  /** model id → limits. Models absent here are unlimited. */
  quotas: z.record(z.string(), modelQuotaSchema).default({}),
  /** How the quota windows count and how their 429s read (quota.ts). */
  quota: z
    .object({
      /**
       * `rolling`: RPD over the last 24 h. `pacific`: RPD counts since the last midnight in
       * America/Los_Angeles and starts again at the next one (upstream); per-day 429s then say the
       * seconds until that midnight.
       */
      dayWindow: z.enum(['rolling', 'pacific']).default('rolling'),
      /** Added to the clock the quota windows read: tests jump to just before midnight and past it. */
      clockOffsetMs: z.number().int().default(0),
      /** Share of quota 429s sent bare, as upstream's capacity 429: no QuotaFailure, no RetryInfo. */
      bareShare: share.default(0),
      /** Share of quota 429s with QuotaFailure (and Help) but no RetryInfo. */
      noRetryInfoShare: share.default(0),
      /**
       * model id (or `*`) → the share of its RPM and of its TPM that other traffic of the same project
       * uses: requests counted in the minute window, evenly spread, that nobody here sent.
       */
      otherTraffic: z
        .record(z.string(), z.object({ rpmShare: share.default(0), tpmShare: share.default(0) }))
        .default({}),
    })
    .prefault({}),
  /** The project's spend limit per rolling window (spend.ts); off unless `limitUsd` is set. */
  spend: spendSchema.prefault({}),
  /** Implicit caching of repeated prefixes (implicit-cache.ts); off unless `enabled`. */
  implicitCache: implicitCacheSchema.prefault({}),
  /** The token rule behind usageMetadata, countTokens, the TPM window and the batch token cap. */
  tokens: tokenRuleSchema.prefault({}),
  /** Extra usage fields and odd answers. */
  answers: answersSchema.prefault({}),
  /** Request size limits on the encoded body (`null`: only the stand-in's own 64 MiB cap, a 413). */
  limits: z
    .object({
      /** generateContent, streamGenerateContent, countTokens: larger bodies are 400 INVALID_ARGUMENT. */
      maxRequestBytes: z.number().int().positive().nullable().default(null),
      /** batchGenerateContent (inline requests make it big): larger bodies are 400 INVALID_ARGUMENT. */
      maxBatchRequestBytes: z.number().int().positive().nullable().default(null),
    })
    .prefault({}),
  /** model id (or `*` for every model) → latency. */
  latency: z.record(z.string(), latencySchema).default({ '*': 0 }),
  /** The random faults' shares (`faultSharesSchema`), and how faults behave. */
  faults: faultSharesSchema
    .extend({
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
      /** How long a file lives (its `expirationTime`; upstream 48 h); tests scale it down. */
      ttlMs: z
        .number()
        .int()
        .positive()
        .default(48 * HOUR_MS),
      /** Whether a file is deleted once its `ttlMs` is over (then 403 like any unknown file). */
      expire: z.boolean().default(false),
      /** Time an uploaded image, audio, video or PDF stays PROCESSING before it is ACTIVE. */
      processingMs: z.number().int().nonnegative().default(0),
      /** Whether uploaded files can be downloaded (upstream: only GENERATED ones, e.g. batch output). */
      downloadUploaded: z.boolean().default(true),
      /**
       * Whether an upload start must declare its size (`x-goog-upload-header-content-length`, as the
       * SDK and the Files API guide send it): without one it is 400 INVALID_ARGUMENT.
       */
      requireSize: z.boolean().default(false),
      /**
       * Whether only the types the docs use are taken (`DOCUMENTED_UPLOAD_TYPES` in files.ts; for
       * Batch input the guide's `jsonl`): any other, `application/jsonl` included, is 400
       * "Unsupported MIME type: …", as upstream answered (python-genai #1547).
       */
      documentedTypesOnly: z.boolean().default(false),
      /**
       * Whether a download is sent gzipped to a client that accepts it (`content-encoding: gzip`,
       * `content-length` the packed size), as Google's front end does.
       */
      gzipDownloads: z.boolean().default(false),
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
       * Share of batch lines answered with a transient error line (429, 500 or 503 in turn, by draw)
       * that the same request sent alone would not get: `[[fault:batch-503]]` (and `-429`, `-500`)
       * forces one.
       */
      transientLineShare: share.default(0),
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
      /**
       * Whether lines are answered one by one across `runningMs`, so batchStats move while RUNNING;
       * otherwise every line is answered when `runningMs` is over.
       */
      progressive: z.boolean().default(false),
      /** A batch still PENDING or RUNNING this long after its creation ends EXPIRED (upstream 48 h). */
      expireAfterMs: z.number().int().positive().nullable().default(null),
      /**
       * Whether a batch cancelled or expired while RUNNING keeps the lines answered so far, in a
       * responses file (inline: inlinedResponses) on the ended batch.
       */
      partialOutput: z.boolean().default(false),
      /** Whether `batch.displayName` is required (upstream's REST reference says so): 400 without it. */
      requireDisplayName: z.boolean().default(false),
    })
    .prefault({}),
  /** Flex's latency and shedding, Priority's cap (tiers.ts). */
  serviceTiers: serviceTiersSchema.prefault({}),
  /** Batch webhooks (webhooks.ts): where a batch's end is pushed, and how. */
  webhooks: webhooksSchema.prefault({}),
  /** Vertex AI mode: paths, bearer auth and a shared pool that throttles by load (vertex.ts). */
  vertex: vertexSchema.prefault({}),
  /** Number of SSE chunks a streamed answer is split into (at most; short answers send fewer). */
  streamChunks: z.number().int().positive().default(3),
});

/** The validated configuration with every default filled in. */
export type GeminiStandInConfig = z.infer<typeof geminiStandInConfigSchema>;
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

/**
 * What `profile: 'strict'` sets: upstream's harder behaviours with realistic defaults. A profile
 * sets every knob named here (the token rule and answer shares whole, so a switch leaves no skew or
 * share behind); every other knob keeps its value. The 20 MiB batch body is the inline batch limit
 * of the Batch API docs; the 100 MiB request body is the inline limit of the file-input docs since
 * January 2026 (20 MB before).
 */
export const STRICT_PRESET = {
  quota: { dayWindow: 'pacific', bareShare: 0.1, noRetryInfoShare: 0.1 },
  tokens: {
    ...tokenRuleSchema.parse({}),
    rule: 'modality',
    latinCharsPerToken: 3.2,
    cjkTokensPerChar: 1,
    otherCharsPerToken: 2,
  },
  answers: {
    ...answersSchema.parse({}),
    thinkingModels: ['gemini-2.5-flash', 'gemini-2.5-pro'],
    tokenDetails: true,
  },
  limits: { maxRequestBytes: 100 * MIB, maxBatchRequestBytes: 20 * MIB },
  files: {
    ttlMs: 48 * HOUR_MS,
    expire: true,
    processingMs: 2000,
    downloadUploaded: false,
    requireSize: true,
    documentedTypesOnly: true,
    gzipDownloads: true,
  },
  batch: { progressive: true, expireAfterMs: 48 * HOUR_MS, partialOutput: true, requireDisplayName: true },
} satisfies GeminiStandInConfigPatch;

/** The values `source` has at the paths `shape` has (objects recursively; anything else whole). */
function pickLike(shape: Record<string, unknown>, source: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(shape)) {
    const from = source[key];
    out[key] = isPlainObject(value) && isPlainObject(from) ? pickLike(value, from) : from;
  }
  return out;
}

/** The knobs each profile sets: strict's preset, and ideal's defaults for the same knobs. */
const PROFILE_PRESETS: Record<GeminiStandInConfig['profile'], Record<string, unknown>> = {
  strict: STRICT_PRESET,
  ideal: pickLike(STRICT_PRESET, geminiStandInConfigSchema.parse({}) as unknown as Record<string, unknown>),
};

function validate(input: unknown): GeminiStandInConfig {
  const result = geminiStandInConfigSchema.safeParse(input ?? {});
  if (!result.success)
    throw new StandInConfigError(`invalid stand-in config: ${z.prettifyError(result.error)}`);
  return result.data;
}

/** The input with its profile's preset under it (the input's own knobs win). */
function withProfile(base: unknown, patch: unknown): unknown {
  const profile = isPlainObject(patch) ? patch.profile : undefined;
  if (profile !== 'ideal' && profile !== 'strict') return deepMerge(base, patch);
  return deepMerge(deepMerge(base, PROFILE_PRESETS[profile]), patch);
}

/**
 * Validates `input` (anything JSON-like) into a full configuration, naming each bad field. A
 * `profile` in it sets that profile's knobs first.
 */
export function parseConfig(input: unknown): GeminiStandInConfig {
  return validate(withProfile({}, input ?? {}));
}

/**
 * Merges a partial configuration into a full one and validates the result. A `profile` in the patch
 * sets every knob of that profile first, then the patch's own knobs apply.
 */
export function mergeConfig(base: GeminiStandInConfig, patch: unknown): GeminiStandInConfig {
  return validate(withProfile(base, patch));
}
