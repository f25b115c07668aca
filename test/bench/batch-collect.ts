import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import type { BatchPart } from '../../functions/core/batch.js';
import { counterShardsFor, itemIdForIndex, type JobSpec, type NewItem } from '../../functions/core/jobs.js';
import { createLifecycle } from '../../functions/lifecycle/lifecycle.js';
import { readQuotas } from '../../functions/platform/config.js';
import { createBatchApi } from '../../functions/platform/gemini/batch-api.js';
import { createLogger } from '../../functions/platform/logger.js';
import type { ObjectStore } from '../../functions/platform/object-store.js';
import { createBatchApiStores, createStores } from '../../functions/platform/store/index.js';
import { collectRun } from '../../functions/tick/batch-api/collect.js';
import type { BatchCycleDeps } from '../../functions/tick/batch-api/cycle.js';
import { startFirestoreEmulator } from '../../infra/local/firestore.js';
import { createPrng as prng } from '../../infra/local/prng.js';
import { startStandIn } from './batch-processes.js';

/**
 * Benchmark 2: a batch job of `items` items stored in the real Firestore emulator, its responses
 * file (shuffled, ~1% error lines) uploaded to the Gemini stand-in, then `collectRun` timed as the
 * tick's Batch API cycle runs it, and the ordered results read back (`lifecycle.resultLines`). Runs in this
 * process; the emulators are children.
 */
export interface CollectResult {
  items: number;
  errorLines: number;
  /** Setup, not measured against the target. */
  createSeconds: number;
  responsesUploadSeconds: number;
  responsesBytes: number;
  /** The target: `collectRun` from the first line read to the job finished. */
  collectSeconds: number;
  itemsPerSecond: number;
  resultsSeconds: number;
  resultLines: number;
  resultBytes: number;
  counts: { succeeded: number; failed: number; cancelled: number; pending: number };
  /** Downloads whose socket closed after their last byte (see fetchToleratingLateClose). */
  lateCloses: number;
  status: string;
  verified: boolean;
}

const PROJECT = 'bench-batch';
const ERROR_SHARE = 0.01;

/** An ObjectStore for answers too big for a document: none are here, so it holds them in memory. */
function memoryObjects(): ObjectStore {
  const held = new Map<string, unknown>();
  return {
    async putJson(name, value) {
      held.set(name, value);
    },
    async getJson(name) {
      return held.get(name);
    },
    read() {
      throw new Error('not used by the collect benchmark');
    },
    async writeStream() {
      throw new Error('not used by the collect benchmark');
    },
    async delete(name) {
      held.delete(name);
    },
  };
}

/**
 * The global fetch, except that a download whose connection closes after its last byte (all of its
 * content-length received) ends instead of failing. Works around a race of this setup: the stand-in
 * (node:http, keepAliveTimeout 5 s) closes the kept-alive socket about 6 s after it wrote the last
 * byte into the kernel's buffers; a collector still reading those buffers then has undici's parser
 * paused before the message's end, and undici reports "terminated" (other side closed) although
 * every byte arrived. `lateCloses` counts how often it happened.
 */
function fetchToleratingLateClose(seen: { lateCloses: number }): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    const url = input instanceof Request ? input.url : String(input);
    const length = Number(res.headers.get('content-length') ?? Number.NaN);
    if (!url.includes(':download') || !res.body || !Number.isSafeInteger(length)) return res;
    const reader = res.body.getReader();
    let received = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) return controller.close();
          received += value.byteLength;
          controller.enqueue(value);
        } catch (error) {
          if (received !== length) return controller.error(error);
          seen.lateCloses++;
          controller.close();
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/** The responses file: one line per item in shuffled order, about 1% of them refusals (error lines). */
function responses(items: number, isError: (i: number) => boolean) {
  const random = prng(13);
  const order = Array.from({ length: items }, (_, i) => i);
  for (let i = items - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  let bytes = 0;
  async function* lines(): AsyncGenerator<string> {
    for (let from = 0; from < items; from += 500) {
      let piece = '';
      for (const i of order.slice(from, from + 500)) {
        const key = itemIdForIndex(i);
        const line = isError(i)
          ? // A line Gemini refused for good: it ends failed. (A transient one, 429/500/503, would go
            // back through realtime, which this benchmark does not run.)
            { key, error: { code: 3, message: `invalid argument in item ${i}` } }
          : {
              key,
              response: {
                candidates: [
                  {
                    content: {
                      role: 'model',
                      parts: [
                        {
                          text: `Answer ${i}: a short reply of about a hundred characters, as a model gives.`,
                        },
                      ],
                    },
                    finishReason: 'STOP',
                  },
                ],
                usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 20, totalTokenCount: 32 },
              },
            };
        piece += `${JSON.stringify(line)}\n`;
      }
      bytes += Buffer.byteLength(piece);
      yield piece;
    }
  }
  return { lines, bytes: () => bytes };
}

export async function benchCollect(options: { items: number; scratch: string }): Promise<CollectResult> {
  const n = options.items;
  const dir = join(options.scratch, 'collect');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const standIn = await startStandIn(join(dir, 'gemini'));
  const firestore = await startFirestoreEmulator();
  process.env.FIRESTORE_EMULATOR_HOST = firestore.host;
  const db = new Firestore({ projectId: PROJECT, ignoreUndefinedProperties: true });
  try {
    const logger = createLogger({ level: 'warn' });
    const prefix = `bench-${randomUUID().slice(0, 8)}-`;
    const stores = createStores(db, { collectionPrefix: prefix });
    const batch = createBatchApiStores(db, { collectionPrefix: prefix });
    const objects = memoryObjects();
    const tasks = { enqueueControl: async () => undefined, deleteItems: async () => 0 };
    const lifecycle = createLifecycle({
      stores,
      batch,
      tasks,
      objects,
      logger,
      notify: async () => undefined,
      stallMs: 60_000,
    });
    const quotas = readQuotas();
    const model = quotas.defaultModel;
    const seen = { lateCloses: 0 };
    const api = createBatchApi({
      apiKey: 'local',
      baseUrl: standIn.info.url,
      fetch: fetchToleratingLateClose(seen),
    });

    // Setup: the job as POST /jobs stores a batch job (functions/ingest/handler.ts createJob).
    const jobId = randomUUID();
    const newItems: NewItem[] = Array.from({ length: n }, (_, i) => ({
      id: itemIdForIndex(i),
      index: i,
      key: `k${i}`,
      request: { contents: [{ role: 'user', parts: [{ text: `Prompt ${i}: say something short.` }] }] },
      estimatedTokens: 9,
      batchPart: 0,
    }));
    const spec: JobSpec = {
      id: jobId,
      model,
      mode: 'batch',
      total: n,
      source: 'api',
      counterShards: counterShardsFor(quotas.models[model]!.rpm),
      paths: { realtime: 0, batch: n },
      staged: { object: `staging/${jobId}.jsonl` },
      onBatchFailure: 'realtime',
    };
    const part: BatchPart = {
      part: 0,
      fromIndex: 0,
      toIndex: n,
      fromByte: 0,
      toByte: n * 100,
      items: n,
      tokens: n * 9,
    };
    let t0 = performance.now();
    await lifecycle.create(spec, newItems, undefined, { runs: [part] });
    const createSeconds = (performance.now() - t0) / 1000;
    console.error(`collect: ${n} items stored in ${createSeconds.toFixed(1)} s`);

    const isError = (i: number) => (i * 2654435761) % 1_000_003 < 1_000_003 * ERROR_SHARE;
    const errorLines = newItems.filter((item) => isError(item.index)).length;
    const out = responses(n, isError);
    t0 = performance.now();
    const file = await api.uploadJsonl(out.lines(), { displayName: `batch-${jobId}-responses` });
    const responsesUploadSeconds = (performance.now() - t0) / 1000;

    const [run] = await batch.runs.listForJob(jobId);
    const job = await lifecycle.getJob(jobId);
    if (!run || !job) throw new Error('the job or its run was not stored');
    const deps: BatchCycleDeps = {
      lifecycle,
      runs: batch.runs,
      outcomes: lifecycle.batchOutcomes!,
      api,
      objects,
      quotas,
      logger,
      pendingDeadlineMs: 24 * 3600_000,
    };
    const info = {
      name: 'batches/bench',
      state: 'SUCCEEDED' as const,
      stats: {
        requestCount: n,
        successfulRequestCount: n - errorLines,
        failedRequestCount: errorLines,
        pendingRequestCount: 0,
      },
      responsesFile: file.name,
    };
    t0 = performance.now();
    await collectRun(run, job, info, deps, logger);
    const collectSeconds = (performance.now() - t0) / 1000;

    const view = await lifecycle.view(jobId);
    if (!view) throw new Error('the job is gone');

    t0 = performance.now();
    let resultLines = 0;
    let resultBytes = 0;
    for await (const line of lifecycle.resultLines(jobId)) {
      resultLines++;
      resultBytes += Buffer.byteLength(line);
    }
    const resultsSeconds = (performance.now() - t0) / 1000;

    const { succeeded, failed, cancelled, pending } = view.counts;
    return {
      items: n,
      errorLines,
      createSeconds,
      responsesUploadSeconds,
      responsesBytes: out.bytes(),
      collectSeconds,
      itemsPerSecond: n / collectSeconds,
      resultsSeconds,
      resultLines,
      resultBytes,
      counts: { succeeded, failed, cancelled, pending },
      lateCloses: seen.lateCloses,
      status: view.status,
      verified:
        succeeded === n - errorLines &&
        failed === errorLines &&
        pending === 0 &&
        view.status === 'succeeded' &&
        resultLines === n,
    };
  } finally {
    await db.terminate();
    await firestore.stop();
    await standIn.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
