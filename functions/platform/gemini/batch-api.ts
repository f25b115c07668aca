import { type BatchJob, GoogleGenAI } from '@google/genai';
import { z } from 'zod';
import { GEMINI_API_VERSION, GeminiCallError, toCallError } from './client.js';
import { uploadResumable } from './files-upload.js';
import { type RestTransport, restCall, restLines } from './rest.js';

/** Batch states without prefix: the REST API says BATCH_STATE_*, the JS SDK JOB_STATE_*: both accepted. */
export type BatchState = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED' | 'EXPIRED';
export interface BatchStats {
  requestCount: number;
  successfulRequestCount: number;
  failedRequestCount: number;
  pendingRequestCount: number;
}
export interface BatchInfo {
  name: string; // "batches/…"
  displayName?: string;
  state: BatchState;
  stats: BatchStats; // int64 strings parsed; absent counts (proto3 omits zeros) are 0
  responsesFile?: string; // "files/…" once SUCCEEDED
  error?: { code: number; message: string };
  createTime?: string;
}
export interface BatchApi {
  /**
   * Streams JSONL into a Files API resumable upload; bounded memory (one chunk), no local copy.
   * `sizeBytes` (the source's exact length) is declared at start, as the SDK and the docs do.
   */
  uploadJsonl(
    source: AsyncIterable<Uint8Array | string>,
    options: { displayName: string; sizeBytes?: number; signal?: AbortSignal },
  ): Promise<{ name: string; sizeBytes: number }>;
  /** models/{model}:batchGenerateContent from an uploaded file. Not idempotent upstream. */
  createBatch(model: string, fileName: string, displayName: string): Promise<BatchInfo>;
  /** The REST resource read directly (the JS SDK drops batchStats for the Gemini API). */
  getBatch(name: string): Promise<BatchInfo>;
  /**
   * Every batch of the project, newest first, paged (to find one by displayName after a crash).
   * The order is the API's: the stand-in lists newest first; upstream documents no order.
   */
  listBatches(): AsyncIterable<BatchInfo>;
  cancelBatch(name: string): Promise<void>;
  /** The lines of a responses file, streamed (never the whole file in memory); blank lines skipped. */
  responseLines(fileName: string, signal?: AbortSignal): AsyncIterable<string>;
  /** Deletes an uploaded or generated file; a file already gone is not an error. */
  deleteFile(name: string): Promise<void>;
}

export interface BatchApiOptions {
  apiKey: string;
  /** Default https://generativelanguage.googleapis.com; the local stand-in's URL in tests. */
  baseUrl?: string;
  /** Bound on each request (default 60 s); a download applies it to each wait for the next piece. */
  timeoutMs?: number;
  /** The transport of every call, the SDK's included (default the global fetch). */
  fetch?: typeof fetch;
  /** An SDK client to use instead of one built from the options above. */
  sdk?: GoogleGenAI;
}

const DEFAULT_BASE_URL = 'https://generativelanguage.googleapis.com';
const DEFAULT_TIMEOUT_MS = 60_000;
/** Batches asked for per list page. */
const PAGE_SIZE = 100;
const STATES: readonly BatchState[] = ['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'EXPIRED'];

function knownState(raw: string): BatchState | undefined {
  const bare = raw.replace(/^(?:BATCH|JOB)_STATE_/, '');
  return STATES.find((s) => s === bare);
}

/** A batch state in either spelling (`BATCH_STATE_RUNNING`, `JOB_STATE_RUNNING`) or bare; else throws. */
export function parseBatchState(raw: string): BatchState {
  const state = knownState(raw);
  if (!state) throw new Error(`Unknown batch state: ${raw}`);
  return state;
}

/** An int64 count as the REST API sends it (a decimal string); proto3 leaves zeros out. */
const count = z
  .union([z.string().regex(/^\d+$/), z.number().int().nonnegative()])
  .optional()
  .transform((v) => (v === undefined ? 0 : Number(v)));

/** The REST batch resource: a long-running Operation whose `metadata` is the GenerateContentBatch. */
const batchOperationSchema = z.object({
  name: z.string().regex(/^batches\/[^/]+$/),
  metadata: z.object({
    displayName: z.string().optional(),
    state: z.string().transform((raw, ctx) => {
      const state = knownState(raw);
      if (state) return state;
      ctx.addIssue({ code: 'custom', message: `unknown batch state ${raw}` });
      return z.NEVER;
    }),
    createTime: z.string().optional(),
    batchStats: z
      .object({
        requestCount: count,
        successfulRequestCount: count,
        failedRequestCount: count,
        pendingRequestCount: count,
      })
      .prefault({}),
    output: z.object({ responsesFile: z.string().optional() }).optional(),
  }),
  error: z.object({ code: z.number().int(), message: z.string().default('') }).optional(),
});

/** A batch resource (`GET batches/{id}`, an entry of `GET batches`) as a BatchInfo. */
export function parseBatchResource(json: unknown): BatchInfo {
  const parsed = batchOperationSchema.safeParse(json);
  if (!parsed.success) {
    throw new GeminiCallError(`Unexpected batch resource: ${z.prettifyError(parsed.error)}`, 200, json);
  }
  const { name, metadata, error } = parsed.data;
  const responsesFile = metadata.output?.responsesFile;
  return {
    name,
    state: metadata.state,
    stats: metadata.batchStats,
    ...(metadata.displayName !== undefined ? { displayName: metadata.displayName } : {}),
    ...(responsesFile !== undefined ? { responsesFile } : {}),
    ...(error ? { error } : {}),
    ...(metadata.createTime !== undefined ? { createTime: metadata.createTime } : {}),
  };
}

/** What the SDK's `batches.create` answers, which carries no batchStats. */
function fromSdkJob(job: BatchJob): BatchInfo {
  if (!job.name || !job.state) throw new GeminiCallError('The created batch has no name or state', 200, job);
  return {
    name: job.name,
    state: parseBatchState(job.state),
    stats: { requestCount: 0, successfulRequestCount: 0, failedRequestCount: 0, pendingRequestCount: 0 },
    ...(job.displayName ? { displayName: job.displayName } : {}),
    ...(job.dest?.fileName ? { responsesFile: job.dest.fileName } : {}),
    ...(job.error ? { error: { code: job.error.code ?? 0, message: job.error.message ?? '' } } : {}),
    ...(job.createTime ? { createTime: job.createTime } : {}),
  };
}

/** `batches/{id}` from a name or a bare id; anything else is a caller's bug. */
function batchName(name: string): string {
  const id = /^(?:batches\/)?([A-Za-z0-9_-]+)$/.exec(name)?.[1];
  if (id === undefined) throw new TypeError(`Not a batch name: ${name}`);
  return `batches/${id}`;
}

/** `files/{id}` from a name or a bare id; anything else is a caller's bug. */
function fileName(name: string): string {
  const id = /^(?:files\/)?([a-z0-9-]+)$/.exec(name)?.[1];
  if (id === undefined) throw new TypeError(`Not a file name: ${name}`);
  return `files/${id}`;
}

/**
 * The type of a Batch API input file: the Batch guide's own (`mimeType: 'jsonl'` in its JavaScript
 * example, `mime_type='jsonl'` in Python: ai.google.dev/gemini-api/docs/batch-api, "Input file").
 * `application/jsonl` is not a type the docs use, and uploads with it have been refused 400
 * "Unsupported MIME type" (python-genai #1547, gemini cookbook #1008).
 */
export const BATCH_INPUT_MIME_TYPE = 'jsonl';

/** Upstream answers an unknown file 403 "…or it may not exist" (so names cannot be probed), or 404. */
export function isGone(error: GeminiCallError): boolean {
  if (error.httpStatus === 404) return true;
  const message = (error.body as { error?: { message?: unknown } } | undefined)?.error?.message;
  return error.httpStatus === 403 && typeof message === 'string' && message.includes('may not exist');
}

/**
 * The Batch API client. The SDK creates and cancels batches and deletes files (it sends those
 * right and never retries on its own, which matters for a create that is not idempotent); plain
 * fetch on the documented REST shapes reads batches (the SDK drops batchStats), streams the upload
 * (the SDK takes only a path or a Blob) and the download (the SDK writes it to a path).
 */
export function createBatchApi(options: BatchApiOptions): BatchApi {
  const t: RestTransport = {
    baseUrl: (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, ''),
    apiKey: options.apiKey,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    fetch: options.fetch ?? globalThis.fetch,
  };
  const ai =
    options.sdk ??
    new GoogleGenAI({
      // The Developer API whatever GOOGLE_GENAI_USE_VERTEXAI says (the SDK reads it when unset).
      vertexai: false,
      apiKey: options.apiKey,
      apiVersion: GEMINI_API_VERSION,
      httpOptions: {
        baseUrl: t.baseUrl,
        timeout: t.timeoutMs,
        ...(options.fetch ? { fetch: options.fetch } : {}),
      },
    });

  async function getBatch(name: string): Promise<BatchInfo> {
    const res = await restCall(t, `${t.baseUrl}/${GEMINI_API_VERSION}/${batchName(name)}`);
    return parseBatchResource(await res.json());
  }

  return {
    uploadJsonl: (source, { displayName, sizeBytes, signal }) =>
      uploadResumable(t, source, {
        displayName,
        mimeType: BATCH_INPUT_MIME_TYPE,
        ...(sizeBytes !== undefined ? { sizeBytes } : {}),
        ...(signal ? { signal } : {}),
      }),

    async createBatch(model, file, displayName) {
      const src = fileName(file);
      let job: BatchJob;
      try {
        job = await ai.batches.create({ model, src, config: { displayName } });
      } catch (error) {
        throw toCallError(error);
      }
      const created = fromSdkJob(job);
      // The SDK's answer drops batchStats: read them once. If that read fails the batch exists all
      // the same, so its creation is reported (with zero counts) rather than an error inviting a retry.
      return getBatch(created.name).catch(() => created);
    },

    getBatch,

    async *listBatches() {
      let pageToken: string | undefined;
      do {
        const query = new URLSearchParams({
          pageSize: String(PAGE_SIZE),
          ...(pageToken ? { pageToken } : {}),
        });
        const res = await restCall(t, `${t.baseUrl}/${GEMINI_API_VERSION}/batches?${query}`);
        const page = (await res.json()) as { operations?: unknown[]; nextPageToken?: string };
        for (const operation of page.operations ?? []) yield parseBatchResource(operation);
        pageToken = page.nextPageToken || undefined;
      } while (pageToken);
    },

    async cancelBatch(name) {
      const batch = batchName(name);
      try {
        await ai.batches.cancel({ name: batch });
      } catch (error) {
        throw toCallError(error);
      }
    },

    responseLines(file, signal) {
      const url = `${t.baseUrl}/download/${GEMINI_API_VERSION}/${fileName(file)}:download?alt=media`;
      return restLines(t, url, signal);
    },

    async deleteFile(name) {
      const file = fileName(name);
      try {
        await ai.files.delete({ name: file });
      } catch (error) {
        const callError = toCallError(error);
        if (!isGone(callError)) throw callError;
      }
    },
  };
}
