import { randomUUID } from 'node:crypto';
import { Firestore } from '@google-cloud/firestore';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { reroutePlanMs } from '../../functions/core/batch-run.js';
import { itemIdForIndex, type NewItem } from '../../functions/core/jobs.js';
import { createLifecycle } from '../../functions/lifecycle/lifecycle.js';
import { type BatchApi, type BatchInfo, createBatchApi } from '../../functions/platform/gemini/batch-api.js';
import { GeminiCallError } from '../../functions/platform/gemini/client.js';
import { createLogger } from '../../functions/platform/logger.js';
import { createBatchApiStores, createStores } from '../../functions/platform/store/index.js';
import { batchCycle } from '../../functions/tick/batch-api/cycle.js';
import { UPLOAD_NO_FILE_MARKER } from '../../infra/local/gemini/files.js';
import { FakeObjectStore, FakeTaskQueue } from '../helpers/fakes.js';
import { testQuotas } from '../helpers/test-quotas.js';

// The Batch API cycle over the real Firestore stores (the emulator), with a Batch API double that
// fails where a loaded machine or network makes the real one fail.

const MODEL = 'gemini-2.5-flash';

/**
 * Stores in `db` under a fresh prefix (`label-…-`), a lifecycle over them, and the Batch API cycle's deps
 * but its `api` (each test brings the double it needs).
 */
function freshWorld(db: Firestore, label: string) {
  const prefix = `${label}-${randomUUID().slice(0, 8)}-`;
  const stores = createStores(db, { collectionPrefix: prefix });
  const batch = createBatchApiStores(db, { collectionPrefix: prefix });
  const objects = new FakeObjectStore();
  const tasks = new FakeTaskQueue();
  const logger = createLogger({ level: 'silent' });
  const lifecycle = createLifecycle({
    stores,
    batch,
    tasks,
    objects,
    logger,
    notify: async () => undefined,
    stallMs: 60_000,
  });
  const outcomes = lifecycle.batchOutcomes!;
  const deps = {
    lifecycle,
    runs: batch.runs,
    outcomes,
    objects,
    quotas: testQuotas(),
    logger,
    pendingDeadlineMs: 60_000,
  };
  return { prefix, stores, batch, objects, tasks, lifecycle, deps };
}

describe('the batch cycle in Firestore', () => {
  const db = new Firestore({
    projectId: 'e2e-batch-cycle',
    host: inject('firestoreEmulatorHost'),
    ssl: false,
  });
  afterAll(() => db.terminate());

  /** A batch job whose first part is running upstream; with `parts: 2` its second half is still staged. */
  async function runningBatchJob(total: number, parts: 1 | 2 = 1) {
    const { prefix, batch, lifecycle, tasks, deps, objects } = freshWorld(db, 'cycle');
    const id = randomUUID();
    // The staged set the parts' uploads read (a first pass counts their bytes).
    const lineOf = (i: number) => `${JSON.stringify({ key: `k${i}`, prompt: `p${i}` })}\n`;
    const bytesTo = (n: number) => Buffer.byteLength(Array.from({ length: n }, (_, i) => lineOf(i)).join(''));
    objects.objects.set(`staging/${id}.jsonl`, Array.from({ length: total }, (_, i) => lineOf(i)).join(''));
    const items: NewItem[] = Array.from({ length: total }, (_, i) => ({
      id: itemIdForIndex(i),
      index: i,
      key: `k${i}`,
      request: { contents: [{ role: 'user', parts: [{ text: `p${i}` }] }] },
      estimatedTokens: 10,
      batchPart: parts === 2 && i >= total / 2 ? 1 : 0,
    }));
    const half = parts === 2 ? total / 2 : total;
    await lifecycle.create(
      {
        id,
        model: MODEL,
        mode: 'batch',
        total,
        source: 'api',
        paths: { realtime: 0, batch: total },
        staged: { object: `staging/${id}.jsonl` },
      },
      items,
      undefined,
      {
        runs: [
          {
            part: 0,
            fromIndex: 0,
            toIndex: half,
            fromByte: 0,
            toByte: bytesTo(half),
            items: half,
            tokens: 10 * half,
          },
          ...(parts === 2
            ? [
                {
                  part: 1,
                  fromIndex: half,
                  toIndex: total,
                  fromByte: bytesTo(half),
                  toByte: bytesTo(total),
                  items: half,
                  tokens: 10 * half,
                },
              ]
            : []),
        ],
      },
    );
    const staged = (await batch.runs.listForJob(id)).find((r) => r.part === 0);
    await batch.runs.update(staged!, {
      state: 'running',
      batchName: 'batches/b1',
      fileName: 'files/in',
      createdAtMs: Date.now(),
      upstream: 'RUNNING',
    });
    return { id, batch, lifecycle, deps, items, tasks, prefix };
  }

  /** A succeeded batch whose responses file answers every item, the first download dropping midway. */
  function flakyDownloadApi(items: NewItem[]): BatchApi & { downloads: number } {
    const info: BatchInfo = {
      name: 'batches/b1',
      state: 'SUCCEEDED',
      stats: {
        requestCount: items.length,
        successfulRequestCount: items.length,
        failedRequestCount: 0,
        pendingRequestCount: 0,
      },
      responsesFile: 'files/out',
    };
    const api = {
      downloads: 0,
      uploadJsonl: async () => ({ name: 'files/in', sizeBytes: 1 }),
      createBatch: async () => info,
      getBatch: async () => info,
      async *listBatches() {},
      cancelBatch: async () => undefined,
      deleteFile: async () => undefined,
      async *responseLines() {
        api.downloads++;
        for (const [n, item] of items.entries()) {
          if (api.downloads === 1 && n === 2) throw new Error('the download was reset');
          yield JSON.stringify({
            key: item.id,
            response: {
              candidates: [{ content: { parts: [{ text: `answer ${n}` }] } }],
              usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 4 },
            },
          });
        }
      },
    };
    return api;
  }

  it('gives back the lease of a step that failed, shows its error, and collects at the next tick', async () => {
    // Arrange: a running batch whose first download breaks off.
    const { id, batch, lifecycle, deps, items } = await runningBatchJob(5);
    const api = flakyDownloadApi(items);

    // Act: the first tick fails while collecting.
    const first = await batchCycle({ ...deps, api });
    const [afterFirst] = await batch.runs.listForJob(id);
    const viewAfterFirst = await lifecycle.view(id);

    // Assert: nothing collected, the run is free for the next tick, and the job says why.
    expect(first.collected).toBe(0);
    expect(afterFirst).toMatchObject({
      state: 'running',
      leaseUntilMs: null,
      lastError: 'the download was reset',
    });
    expect(viewAfterFirst?.batches?.[0]?.lastError).toBe('the download was reset');

    // Act: the very next tick.
    const second = await batchCycle({ ...deps, api });
    const [afterSecond] = await batch.runs.listForJob(id);
    const job = await lifecycle.view(id);

    // Assert: collected whole, and the error is gone.
    expect(second.collected).toBe(1);
    expect(api.downloads).toBe(2);
    expect(afterSecond).toMatchObject({ state: 'collected', lastError: null });
    expect(job).toMatchObject({ status: 'succeeded', counts: { succeeded: 5, pending: 0 } });
  });

  it('keeps the responses file of a partial batch until its fallback is recorded; the items sent back are due', async () => {
    // Arrange: the batch answered 3 of 5 items; sending the rest back fails once (the enqueue task).
    const { id, batch, deps, items, tasks, prefix } = await runningBatchJob(5);
    const deleted: string[] = [];
    const info: BatchInfo = {
      name: 'batches/b1',
      state: 'SUCCEEDED',
      stats: { requestCount: 5, successfulRequestCount: 3, failedRequestCount: 0, pendingRequestCount: 0 },
      responsesFile: 'files/out',
    };
    const api: BatchApi = {
      uploadJsonl: async () => ({ name: 'files/in', sizeBytes: 1 }),
      createBatch: async () => info,
      getBatch: async () => info,
      async *listBatches() {},
      cancelBatch: async () => undefined,
      deleteFile: async (name) => {
        deleted.push(name);
      },
      async *responseLines(file) {
        if (deleted.includes(file)) throw new GeminiCallError(`${file} not found`, 404, {});
        for (const item of items.slice(0, 3))
          yield JSON.stringify({
            key: item.id,
            response: { candidates: [{ content: { parts: [{ text: 'a' }] } }] },
          });
      },
    };
    const enqueue = tasks.enqueueControl.bind(tasks);
    let refused = false;
    tasks.enqueueControl = async (...args) => {
      if (!refused) {
        refused = true;
        throw new Error('14 UNAVAILABLE: connection reset');
      }
      return enqueue(...args);
    };
    const before = Date.now();

    // Act: the first tick fails after the items went back; the next one finishes the fallback.
    await batchCycle({ ...deps, api });
    const deletedAfterFirst = [...deleted];
    await batchCycle({ ...deps, api });
    const after = Date.now();

    // Assert
    const [run] = await batch.runs.listForJob(id);
    expect(deletedAfterFirst).toEqual([]);
    expect(run).toMatchObject({ state: 'fallen-back', rerouted: 2, lastError: null, stepFailures: 0 });
    expect(deleted).toEqual(expect.arrayContaining(['files/in', 'files/out']));
    const docs = await db.collection(`${prefix}jobs`).doc(id).collection('items').orderBy('index').get();
    const sentBack = docs.docs.slice(3).map((d) => d.data());
    for (const item of sentBack) {
      expect(item.batchPart).toBeUndefined();
      expect(item.dueByMs).toBeGreaterThanOrEqual(before + 60_000 + reroutePlanMs(5, 1000));
      expect(item.dueByMs).toBeLessThanOrEqual(after + 60_000 + reroutePlanMs(5, 1000));
    }
    expect(docs.docs.slice(0, 3).map((d) => d.get('state'))).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(tasks.controlTasks.size).toBe(1);
  });

  it("keeps a part's failed lines with its run, so its upload leaves them out", async () => {
    // Arrange
    const prefix = `cycle-${randomUUID().slice(0, 8)}-`;
    const batch = createBatchApiStores(db, { collectionPrefix: prefix });
    const part = {
      part: 0,
      fromIndex: 0,
      toIndex: 4,
      fromByte: 0,
      toByte: 40,
      items: 3,
      tokens: 30,
      skip: [2],
    };

    // Act
    await batch.runs.createMany([{ ...part, jobId: 'j', model: MODEL, displayName: 'fanout-j-p0' }]);
    const [run] = await batch.runs.listForJob('j');

    // Assert
    expect(run).toMatchObject({ skip: [2], stepFailures: 0, stepSince: null, ambiguousCreate: false });
  });

  it("keeps a part refused with 429 waiting while the job's own earlier part holds the enqueued tokens", async () => {
    // Arrange: part 0 runs upstream; creating part 1 is refused (the model's enqueued-token cap).
    const { id, batch, deps } = await runningBatchJob(4, 2);
    let now = Date.now();
    const running: BatchInfo = {
      name: 'batches/b1',
      state: 'RUNNING',
      stats: { requestCount: 2, successfulRequestCount: 0, failedRequestCount: 0, pendingRequestCount: 2 },
    };
    const api: BatchApi = {
      uploadJsonl: async () => ({ name: 'files/in2', sizeBytes: 1 }),
      createBatch: async () => {
        throw new GeminiCallError('Gemini answered 429', 429, {});
      },
      getBatch: async () => running,
      async *listBatches() {},
      cancelBatch: async () => undefined,
      deleteFile: async () => undefined,
      async *responseLines() {},
    };
    const tick = () => batchCycle({ ...deps, api, now: () => now, leaseMs: 1 });
    const partOne = async () => (await batch.runs.listForJob(id)).find((r) => r.part === 1)!;

    // Act: ticks well past the deadline while part 0 is still running.
    await tick();
    now += 3 * deps.pendingDeadlineMs;
    const whileRunning = await tick();
    const waiting = await partOne();
    // Part 0 ends (it gave its tokens back); part 1 is still refused, now by others' batches.
    const partZero = (await batch.runs.listForJob(id)).find((r) => r.part === 0)!;
    await batch.runs.update(partZero, { state: 'collected' });
    await tick();
    now += deps.pendingDeadlineMs + 1;
    const afterDeadline = await tick();

    // Assert: waiting behind its own job is not counted; waiting on others is bounded.
    expect(whileRunning.deferred).toBe(1);
    expect(whileRunning.fellBack).toBe(0);
    expect(waiting.state).toBe('staged');
    expect(afterDeadline.fellBack).toBe(1);
    expect((await partOne()).fallback).toMatch(/refused the batch with 429/);
  });
});

describe('the batch cycle against the Gemini stand-in', () => {
  const db = new Firestore({
    projectId: 'e2e-batch-cycle',
    host: inject('firestoreEmulatorHost'),
    ssl: false,
  });
  afterAll(() => db.terminate());

  it("sends the items back once uploads answered 200 with no file reach their bound (the step's, when lower)", async () => {
    // Arrange: a staged part whose upload the stand-in finalizes without naming the file, every time.
    const world = freshWorld(db, 'nofile');
    const { batch, lifecycle, objects, tasks } = world;
    const prompts = [`first ${UPLOAD_NO_FILE_MARKER}`, 'second'];
    const text = prompts.map((prompt, i) => `${JSON.stringify({ key: `k${i}`, prompt })}\n`).join('');
    objects.objects.set('staging/nofile.jsonl', text);
    const id = randomUUID();
    const items: NewItem[] = prompts.map((prompt, i) => ({
      id: itemIdForIndex(i),
      index: i,
      key: `k${i}`,
      request: { contents: [{ role: 'user', parts: [{ text: prompt }] }] },
      estimatedTokens: 10,
      batchPart: 0,
    }));
    await lifecycle.create(
      {
        id,
        model: MODEL,
        mode: 'batch',
        total: 2,
        source: 'api',
        paths: { realtime: 0, batch: 2 },
        staged: { object: 'staging/nofile.jsonl' },
      },
      items,
      undefined,
      {
        runs: [
          {
            part: 0,
            fromIndex: 0,
            toIndex: 2,
            fromByte: 0,
            toByte: Buffer.byteLength(text),
            items: 2,
            tokens: 20,
          },
        ],
      },
    );
    const deps = {
      ...world.deps,
      api: createBatchApi({ apiKey: 'local', baseUrl: inject('stack').geminiBaseUrl, timeoutMs: 10_000 }),
      maxStepFailures: 2,
    };

    // Act: a tick whose upload fails, then the second upload, the last the bound allows.
    await batchCycle(deps);
    const [trying] = await batch.runs.listForJob(id);
    await batchCycle(deps);

    // Assert
    const [run] = await batch.runs.listForJob(id);
    expect(trying).toMatchObject({
      state: 'staged',
      stepFailures: 1,
      lastError: expect.stringMatching(/names no file/),
    });
    expect(run).toMatchObject({ state: 'fallen-back', batchName: null, rerouted: 2 });
    expect(run?.fallback).toMatch(/could not be uploaded: .*names no file \(2 uploads\)/);
    expect(tasks.controlTasks.get(`${id}-enqueue-fallback-p0`)).toEqual({
      kind: 'enqueue',
      jobId: id,
      from: 0,
      to: 2,
    });
  });
});
