/** Job and item: the domain model shared by every path (realtime, batch, bucket). */

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type JobMode = 'realtime' | 'batch';
export type ItemState = 'pending' | 'succeeded' | 'failed' | 'cancelled';

export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export function isTerminalJob(status: JobStatus): boolean {
  return TERMINAL_JOB_STATUSES.includes(status);
}

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

export interface Usage {
  promptTokens: number;
  outputTokens: number;
}

/** The error half of a result line: Gemini's own `{code, status, message}`. */
export interface ItemError {
  code: number;
  status: string;
  message: string;
}

export interface JobCounts {
  total: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  pending: number;
}

/** A new item as ingest stores it. `id` is the zero-padded index, so ids sort in input order. */
export interface NewItem {
  id: string;
  index: number;
  key: string;
  request: GenerateContentRequest;
  media?: MediaRef[];
  /** Estimated input tokens, for the TPM budget. */
  estimatedTokens: number;
}

export interface JobSpec {
  id: string;
  model: string;
  mode: JobMode;
  total: number;
  callbackUrl?: string;
  /** Where the job came from: `api`, or `gs://bucket/inbox/…` for bucket jobs. */
  source: string;
  /** Counter documents the job's outcomes are spread over; see {@link counterShardsFor}. */
  counterShards?: number;
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

export function pendingOf(counts: Omit<JobCounts, 'pending'>): number {
  return Math.max(0, counts.total - counts.succeeded - counts.failed - counts.cancelled);
}
