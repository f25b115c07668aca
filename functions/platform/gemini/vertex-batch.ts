import type { BatchJob, GoogleGenAI } from '@google/genai';
import { LIMITS } from '../../api/jobs.js';
import { splitLines } from '../jsonl.js';
import type { ObjectStore } from '../object-store.js';
import { type BatchApi, type BatchInfo, type BatchState, parseBatchState } from './batch-api.js';
import { toCallError } from './client.js';

/**
 * The batch cycle's interface (`BatchApi`) on Vertex AI batch prediction: no Files API, the input is
 * a JSONL object in the deployment's bucket and the answers come back there.
 * - `uploadJsonl` writes the run's lines to `staging/vertex-batch/{displayName}.jsonl` as Vertex
 *   reads them, `{"request": …}`, the line's key carried in the request's `labels` (`fanout_key`):
 *   Vertex echoes each request whole in its output, which is how lines are joined back (their order
 *   is not promised). The "file name" is the object's `gs://` URI.
 * - `createBatch` is the SDK's `batches.create` with `src` that URI and `dest` the prefix
 *   `staging/vertex-output/{displayName}/` (a `batchPredictionJobs` create: gcsSource, gcsDestination).
 * - `responsesFile` is `{outputInfo.gcsOutputDirectory}/predictions.jsonl`; `responseLines` reads it
 *   and gives the cycle the Developer API's line shape: `{"key", "response"}`, or `{"key", "error"}`
 *   for a line whose `status` is not empty.
 * Source: Vertex AI, "Batch inference from Cloud Storage" (input, output) and js-genai's Vertex
 * converters (`batchJobSourceToVertex`, `batchJobFromVertex`: `completionStats`, `outputInfo`).
 */

export interface VertexBatchApiOptions {
  /** The SDK client in Vertex mode (client.ts `sdkFor` with `vertex`). */
  sdk: GoogleGenAI;
  /** The deployment's bucket, where inputs and outputs live. */
  objects: Pick<ObjectStore, 'read' | 'writeStream' | 'delete'>;
  bucket: string;
}

/** The label a line's key travels in (label keys and values: lowercase letters, digits, `_`, `-`). */
export const KEY_LABEL = 'fanout_key';
const INPUT_PREFIX = 'staging/vertex-batch/';
const OUTPUT_PREFIX = 'staging/vertex-output/';

/** Vertex's job states the Developer API has no name for, as the cycle reads them. */
const STATE_ALIASES: Record<string, BatchState> = {
  JOB_STATE_QUEUED: 'PENDING',
  JOB_STATE_CANCELLING: 'RUNNING',
  JOB_STATE_PAUSED: 'RUNNING',
  JOB_STATE_UPDATING: 'RUNNING',
  JOB_STATE_PARTIALLY_SUCCEEDED: 'SUCCEEDED',
};

export function createVertexBatchApi(options: VertexBatchApiOptions): BatchApi {
  const { sdk, objects, bucket } = options;
  const gs = (name: string) => `gs://${bucket}/${name}`;
  const objectOf = (uri: string) => {
    const prefix = `gs://${bucket}/`;
    if (!uri.startsWith(prefix)) throw new Error(`${uri} is not in gs://${bucket}`);
    return uri.slice(prefix.length);
  };
  const call = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      throw toCallError(err);
    }
  };

  return {
    async uploadJsonl(source, { displayName }) {
      const name = `${INPUT_PREFIX}${displayName}.jsonl`;
      let sizeBytes = 0;
      // One line held at a time (a chunk may end inside a line).
      async function* asVertexLines() {
        let rest = '';
        const decoder = new TextDecoder();
        const convert = (text: string) => {
          const line = `${JSON.stringify(vertexLine(text))}\n`;
          sizeBytes += Buffer.byteLength(line);
          return line;
        };
        for await (const chunk of source) {
          const parts = (
            rest + (typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }))
          ).split('\n');
          rest = parts.pop() ?? '';
          for (const text of parts) if (text.trim() !== '') yield convert(text);
        }
        if (rest.trim() !== '') yield convert(rest);
      }
      await objects.writeStream(name, asVertexLines(), { contentType: 'application/jsonl' });
      return { name: gs(name), sizeBytes };
    },

    async createBatch(model, fileName, displayName) {
      const job = await call(() =>
        sdk.batches.create({
          model,
          src: fileName,
          config: { displayName, dest: gs(`${OUTPUT_PREFIX}${displayName}/`) },
        }),
      );
      return infoOf(job);
    },

    async getBatch(name) {
      return infoOf(await call(() => sdk.batches.get({ name })));
    },

    async *listBatches() {
      const pager = await call(() => sdk.batches.list({ config: { pageSize: 100 } }));
      for await (const job of pager) yield infoOf(job);
    },

    async cancelBatch(name) {
      await call(() => sdk.batches.cancel({ name }));
    },

    async *responseLines(fileName, signal) {
      const bytes = objects.read(objectOf(fileName));
      for await (const line of splitLines(bytes, LIMITS.maxItemBytes * 4)) {
        signal?.throwIfAborted();
        if (line.text === undefined || line.text.trim() === '') continue;
        yield JSON.stringify(developerLine(line.text));
      }
    },

    async deleteFile(name) {
      if (name.startsWith(`gs://${bucket}/`)) await objects.delete(objectOf(name));
    },
  };
}

/** A batch line `{"key", "request"}` as Vertex reads it: the key in the request's labels. */
export function vertexLine(text: string): { request: Record<string, unknown> } {
  const { key, request } = JSON.parse(text) as { key: string; request: Record<string, unknown> };
  const labels = { ...(request.labels as Record<string, string> | undefined), [KEY_LABEL]: String(key) };
  return { request: { ...request, labels } };
}

/** A Vertex output line as the Developer API's: `{"key", "response"}` or `{"key", "error"}`. */
export function developerLine(text: string): Record<string, unknown> {
  const line = JSON.parse(text) as {
    status?: string;
    request?: { labels?: Record<string, string> };
    response?: unknown;
  };
  const key = line.request?.labels?.[KEY_LABEL];
  if (line.status || line.response === undefined) {
    const message = line.status || 'no response';
    return { key, error: { ...statusOfLine(message), message } };
  }
  return { key, response: line.response };
}

/**
 * The code of a failed output line from its `status` text (Vertex gives a message, not a code): a
 * busy pool, an internal error or an overload is transient, so the cycle sends the item back through
 * realtime as it does the Developer API's 429/500/503 lines; anything else is the request's fault.
 */
function statusOfLine(message: string): { code: number; status: string } {
  if (/\b429\b|resource.?exhausted/i.test(message)) return { code: 429, status: 'RESOURCE_EXHAUSTED' };
  if (/\b503\b|unavailable|overloaded/i.test(message)) return { code: 503, status: 'UNAVAILABLE' };
  if (/\b500\b|internal/i.test(message)) return { code: 500, status: 'INTERNAL' };
  return { code: 400, status: 'INVALID_ARGUMENT' };
}

/** The cycle's view of a Vertex job (the SDK's `BatchJob` in Vertex mode). */
function infoOf(job: BatchJob): BatchInfo {
  const raw = String(job.state ?? 'JOB_STATE_PENDING');
  const state = STATE_ALIASES[raw] ?? parseBatchState(raw);
  const stats = (job as { completionStats?: Record<string, string | undefined> }).completionStats ?? {};
  const n = (v: string | undefined) => Number(v ?? 0) || 0;
  const successful = n(stats.successfulCount);
  const failed = n(stats.failedCount);
  const pending = n(stats.incompleteCount);
  const directory = (job as { outputInfo?: { gcsOutputDirectory?: string } }).outputInfo?.gcsOutputDirectory;
  return {
    name: job.name ?? '',
    ...(job.displayName ? { displayName: job.displayName } : {}),
    state,
    stats: {
      requestCount: successful + failed + pending,
      successfulRequestCount: successful,
      failedRequestCount: failed,
      pendingRequestCount: pending,
    },
    ...(state === 'SUCCEEDED' && directory ? { responsesFile: `${directory}/predictions.jsonl` } : {}),
    ...(job.error ? { error: { code: job.error.code ?? 0, message: job.error.message ?? '' } } : {}),
    ...(job.createTime ? { createTime: job.createTime } : {}),
  };
}
