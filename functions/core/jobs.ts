/** Job and item: the domain model shared by every path (realtime, batch, bucket). */

import {
  type CallbackView,
  type ItemError,
  isTerminalStatus,
  type JobCounts,
  type JobMode,
  type JobPaths,
  type JobStatus,
  type JobView,
  type ReconcileCounts,
  TERMINAL_JOB_STATUSES,
  type Usage,
} from '../api/jobs.js';
import type { BatchFallback } from './batch.js';
import type { ItemDefaults } from './build-item.js';
import type { PriceTier } from './cost.js';
import type { PipelineSpec, UnitJobOf } from './pipeline.js';
import type { Totals } from './totals.js';

// The shapes clients see are the jobs-API contract's (functions/api/jobs.ts); the domain uses them.
export type {
  CallbackView,
  ItemError,
  JobCounts,
  JobMode,
  JobPaths,
  JobStatus,
  JobView,
  ReconcileCounts,
  Usage,
};
export { TERMINAL_JOB_STATUSES };
export const isTerminalJob = isTerminalStatus;

export type ItemState = 'pending' | 'succeeded' | 'failed' | 'cancelled';

/** A GenerateContentRequest in the REST shape (the Batch API's line format). */
export interface GenerateContentRequest {
  contents: Content[];
  systemInstruction?: Content;
  generationConfig?: Record<string, unknown>;
  safetySettings?: unknown[];
  tools?: unknown[];
  toolConfig?: unknown;
  cachedContent?: string;
}

export interface Content {
  role?: string;
  parts: Part[];
}

export interface Part {
  text?: string;
  inlineData?: { mimeType: string; data: string };
  fileData?: { mimeType?: string; fileUri: string };
  [other: string]: unknown;
}

/** Media the worker fetches and sends inline: an https URL or a gs:// object. */
export interface MediaRef {
  url?: string;
  gcsUri?: string;
  mimeType?: string;
}

/** A new item as ingest stores it. `id` is the zero-padded index, so ids sort in input order. */
export interface NewItem {
  id: string;
  index: number;
  key: string;
  /**
   * The name the input gave its key by, when not `key`: a `custom_id` line (OpenAI's Batch format)
   * gets its result line back with `custom_id`. Absent for `key` (and for keys by position).
   */
  keyField?: 'custom_id';
  request: GenerateContentRequest;
  media?: MediaRef[];
  /** Estimated input tokens, for the TPM budget. */
  estimatedTokens: number;
  /** A bad bucket line: the item is stored failed with this error and never sent. */
  error?: ItemError;
  /** The batch (part) of the job the item goes through (batch jobs, items without media). */
  batchPart?: number;
  /**
   * A pipeline's unit, planned before it is stored: its due time (stored as `ItemRecord.dueByMs`;
   * a name of its own, so an item copied from a stored one never brings its old due time along).
   */
  plannedDueByMs?: number;
}

export interface JobSpec {
  id: string;
  model: string;
  mode: JobMode;
  total: number;
  callbackUrl?: string;
  /** Where the job came from: `api`, or `gs://bucket/inbox/…` for bucket jobs. */
  source: string;
  /** Who created it through the jobs API (see platform/caller.ts); bucket jobs have none. */
  owner?: string;
  /** Counter documents the job's outcomes are spread over; see {@link counterShardsFor}. */
  counterShards?: number;
  /** How many items take each path; a batch that goes wrong moves its items to realtime. */
  paths?: JobPaths;
  /** Batch jobs: what happens to the items of a batch that fails, expires or stays pending. */
  onBatchFailure?: BatchFallback;
  /** When the results are needed (epoch ms), from the request's `deadline`. */
  deadlineMs?: number;
  /** `cache: false` in the request: the job's items neither read nor fill the response cache. */
  cache?: false;
  /** Realtime jobs `auto` sent to Priority (a close deadline, Priority enabled): their calls ask for it. */
  priority?: boolean;
  /** Batch jobs: the staged JSONL its batches are made from (`staging/…`, or the inbox file itself). */
  staged?: StagedSet;
  /** Bucket jobs: where the results file goes once the job is terminal. */
  output?: string;
  /**
   * Counter documents besides the shards: `intake` (lines bad from the start), `batch-p{n}` (what
   * each batch settled). Each is written whole, once, so re-running its writer counts nothing twice.
   */
  extraCounters?: string[];
  /** A re-run (`POST /jobs/{id}/retry`): the job whose items it runs again. */
  retryOf?: string;
  /** The most the job may spend (USD): items not sent by then end cancelled (core/budget.ts). */
  maxCostUsd?: number;
  /** A pipeline job (`steps`): its items run through these steps, each (step, branch) a unit job. */
  pipeline?: PipelineSpec;
  /** A unit job: the pipeline job, step and branch whose units it holds (core/pipeline.ts). */
  unitOf?: UnitJobOf;
}

/** A staged set: an object of the bucket (at a generation), read line by line with the job's defaults. */
export interface StagedSet {
  object: string;
  generation?: string;
  defaults?: ItemDefaults;
}

/**
 * How many counter shards a job of a model needs so that none takes more than about one write a
 * second (Firestore's sustained rate per document) when items finish at the model's RPM.
 */
export function counterShardsFor(rpm: number): number {
  return Math.min(100, Math.max(1, Math.ceil(rpm / 60)));
}

const ITEM_ID_WIDTH = 9;

/** Item ids are the zero-padded input index: documents then list in input order. */
export function itemIdForIndex(index: number): string {
  return String(index).padStart(ITEM_ID_WIDTH, '0');
}

export const NO_RECONCILE: ReconcileCounts = {
  retasked: 0,
  failed: 0,
  orphans: 0,
  reenqueued: 0,
  cancelsResumed: 0,
  finishes: 0,
};

/** The stored job. `version` is the document's update time: the precondition of a later write. */
export interface JobRecord extends JobSpec {
  counterShards: number;
  status: JobStatus;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Items [0, enqueuedThrough) have their task. Enqueuing resumes from here. */
  enqueuedThrough: number;
  /** When enqueuing last made progress or is next due (epoch ms): a job past it has stalled. */
  enqueueDueMs: number;
  notice: string | null;
  final: Totals | null;
  /** A cancel turned the job terminal but has not yet ended every pending item. */
  cancelPending: boolean;
  reconciled: ReconcileCounts;
  /** Bucket jobs: the results file is still to be written (set until it is). */
  exportPending: boolean;
  /** A tick is writing the results file until then (epoch ms). */
  exportLeaseUntilMs?: number;
  /** Gemini's token count over the estimate, the highest a page's sample showed (see plan.ts). */
  tokenRatio?: number;
  /** The jobs that re-ran this one's items (`POST /jobs/{id}/retry`), oldest first. */
  retries?: string[];
  /** Its budget (`maxCostUsd`) was reached: items not yet sent end cancelled with reason `budget`. */
  budgetStopped?: boolean;
  version: string;
}

/** An item's lease: which delivery owns it, and until when. */
export interface ItemLease {
  id: string;
  untilMs: number;
}

/** A stored item with its outcome. */
export interface ItemRecord extends NewItem {
  /** When a delivery found the item late and planned it again: the new plan (epoch ms) of its new task. */
  plannedMs: number | null;
  state: ItemState;
  response?: unknown;
  /** A response too big for the item's document lives in the bucket under this object name. */
  responseObject?: string;
  error?: ItemError;
  usage?: Usage;
  costUsd?: number;
  /** The tier that served the answer (Gemini's header, or `batch`), and what it would cost at standard. */
  tier?: PriceTier;
  standardCostUsd?: number;
  /** Answered from the response cache (its result line says so in `metadata`). */
  cached?: CacheHit;
  /** A pipeline job's item: each step's outcome, by name (the result line's `steps`). */
  steps?: Record<string, unknown>;
  attempts: number;
  lease: ItemLease | null;
  /** Times the reconciler gave the item a new task. */
  rounds: number;
  /**
   * `attempts` when the reconciler last gave the item a task (absent: never): a later sweep that
   * finds it no higher knows that task never reached the worker.
   */
  roundAttempts?: number;
  /** Of `rounds`, those whose task never reached the item (lifecycle/reconcile-items.ts). */
  unreachedRounds?: number;
  /**
   * By when something must have happened to a pending item (epoch ms): its task's planned send plus
   * the dispatch deadline and the queue's whole retry budget. Past it with no live lease, no task
   * will deliver it any more, and the reconciler gives it a new one. Null or absent: no deadline
   * (no task yet: the job's enqueuing, watched on the job, owns it; or a batch holds it).
   */
  dueByMs?: number | null;
  finishedAt: Date | null;
  /** Commit time of the outcome in microseconds: the order of `GET /jobs/{id}/events`. */
  finishedAtMicros: number | null;
  version: string;
}

/** The outcome recorded for an item. */
export type ItemOutcome =
  | {
      state: 'succeeded';
      response: unknown;
      usage: Usage;
      costUsd: number;
      /** The tier that served it, which priced it; `standardCostUsd`: its price at standard. */
      tier?: PriceTier;
      standardCostUsd?: number;
      /** The item's estimate (text items only): the counters learn the token ratio from it. */
      estimatedTokens?: number;
      /** Answered from the response cache: see {@link CacheHit}. */
      cached?: CacheHit;
    }
  | { state: 'failed'; error: ItemError; usage?: Usage; costUsd?: number };

/**
 * An answer served from the response cache (worker/response-cache.ts): `jobId` is the job whose
 * call paid for it, `savedUsd` what that call cost. The item itself costs 0 and counts no tokens.
 */
export interface CacheHit {
  jobId: string;
  savedUsd: number;
}

/** Where `GET /jobs/{id}/events` resumes: the finish time and id of the last item sent. */
export interface FinishCursor {
  finishedAtMicros: number;
  itemId: string;
}

/** The cursor of a finished item, for `Last-Event-ID`. */
export function finishCursorOf(item: Pick<ItemRecord, 'finishedAtMicros' | 'id'>): FinishCursor | undefined {
  return item.finishedAtMicros === null
    ? undefined
    : { finishedAtMicros: item.finishedAtMicros, itemId: item.id };
}

/**
 * The fields of a job as it is first stored, `queued` (all but its creation time and version, which
 * the store sets). `enqueueDueMs`: when enqueuing must have started, or the reconciler starts it.
 */
export function newJobFields(spec: JobSpec, enqueueDueMs: number) {
  return {
    ...spec,
    status: 'queued' as const,
    startedAt: null,
    finishedAt: null,
    // A batch job with no item for the queues has nothing to enqueue; nor have a pipeline job (its
    // unit jobs are enqueued) and a later step's unit job (its units are planned as items reach it).
    enqueuedThrough:
      (spec.mode === 'batch' && (spec.paths?.realtime ?? 0) === 0) ||
      spec.pipeline ||
      (spec.unitOf?.step ?? 0) > 0
        ? spec.total
        : 0,
    enqueueDueMs,
    notice: null,
    final: null,
    cancelPending: false,
    reconciled: { ...NO_RECONCILE },
    exportPending: Boolean(spec.output),
  };
}
