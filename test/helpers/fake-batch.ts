/**
 * In-memory fakes of the Batch API path: the Gemini Batch API (batches, files, faults) and the
 * batch stores (runs, and items in bulk over a `FakeDb`), keeping the contracts the real ones
 * document: run versions as preconditions, outcomes written only on an item still at its version,
 * a part's totals counted from its items, never from the counter shards.
 */
import type { BatchPart } from '../../functions/core/batch.js';
import { OPEN_RUN_STATES } from '../../functions/core/batch-run.js';
import type { ItemRecord } from '../../functions/core/jobs.js';
import type { BatchApi, BatchInfo, BatchState } from '../../functions/platform/gemini/batch-api.js';
import { GeminiCallError } from '../../functions/platform/gemini/client.js';
import type { BatchItemsStore } from '../../functions/platform/store/batch-items.js';
import type { BatchRun, BatchRunsStore } from '../../functions/platform/store/batch-runs.js';
import type { CounterValues } from '../../functions/platform/store/counters.js';
import type { BatchApiStores } from '../../functions/platform/store/index.js';
import type { StoredOutcome } from '../../functions/platform/store/items.js';
import { type FakeDb, roundTrip } from './fake-stores.js';

type BatchMethod =
  | 'uploadJsonl'
  | 'createBatch'
  | 'getBatch'
  | 'listBatches'
  | 'cancelBatch'
  | 'responseLines';

const ENDED: readonly BatchState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'EXPIRED'];

/** A Batch API stand-in: batches and files in memory, every call recorded, faults on request. */
export class FakeBatchApi implements BatchApi {
  readonly batches = new Map<string, BatchInfo & { displayName: string; file: string; visibleAt: number }>();
  /** Files by name: their lines. */
  readonly files = new Map<string, string[]>();
  readonly cancelCalls: string[] = [];
  readonly createCalls: string[] = [];
  readonly deleted: string[] = [];
  downloads = 0;
  listCalls = 0;
  /** A new batch shows in `listBatches` only this many list calls after its creation. */
  listLag = 0;
  /** Runs when a batch is cancelled (before it turns CANCELLED): e.g. answer part of it. */
  onCancel: ((batch: BatchInfo) => void) | undefined;
  private faults = new Map<BatchMethod, Error[]>();
  private seq = 0;

  /** The next `times` calls of `method` throw `error` (after any effect a test adds around them). */
  failNext(method: BatchMethod, error: Error, times = 1): void {
    this.faults.set(method, [...(this.faults.get(method) ?? []), ...Array<Error>(times).fill(error)]);
  }

  private async enter(method: BatchMethod): Promise<void> {
    await roundTrip();
    const error = this.faults.get(method)?.shift();
    if (error) throw error;
  }

  async uploadJsonl(
    source: AsyncIterable<Uint8Array | string>,
    options: { displayName: string; sizeBytes?: number },
  ) {
    let text = '';
    for await (const chunk of source)
      text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    this.uploads.push({ ...options, bytes: Buffer.byteLength(text) });
    await this.enter('uploadJsonl');
    const name = `files/in-${++this.seq}`;
    this.files.set(name, text.split('\n').filter(Boolean));
    return { name, sizeBytes: Buffer.byteLength(text) };
  }

  /** Errors the next creates answer before creating anything (a 429 at the cap, say). */
  readonly refusedCreates: Error[] = [];
  /** Upload options as `uploadJsonl` was called with them. */
  readonly uploads: Array<{ displayName: string; sizeBytes?: number; bytes: number }> = [];

  /**
   * Creates the batch; a fault set with `failNext('createBatch')` throws after it was created, one
   * in `refusedCreates` before. A file that is gone is refused as upstream refuses it (403).
   */
  async createBatch(_model: string, file: string, displayName: string): Promise<BatchInfo> {
    await roundTrip();
    const refused = this.refusedCreates.shift();
    if (refused) throw refused;
    if (!this.files.has(file)) {
      const message = `You do not have permission to access the File ${file.replace('files/', '')} or it may not exist.`;
      throw new GeminiCallError('Gemini answered 403', 403, {
        error: { code: 403, message, status: 'PERMISSION_DENIED' },
      });
    }
    const name = `batches/b${++this.seq}`;
    const lines = this.files.get(file)?.length ?? 0;
    this.batches.set(name, {
      name,
      displayName,
      file,
      state: 'PENDING',
      stats: {
        requestCount: lines,
        successfulRequestCount: 0,
        failedRequestCount: 0,
        pendingRequestCount: lines,
      },
      visibleAt: this.listCalls + this.listLag,
    });
    this.createCalls.push(name);
    await this.enter('createBatch');
    return this.info(name);
  }

  async getBatch(name: string): Promise<BatchInfo> {
    await this.enter('getBatch');
    if (!this.batches.has(name)) throw new GeminiCallError(`${name} not found`, 404, {});
    return this.info(name);
  }

  async *listBatches(): AsyncIterable<BatchInfo> {
    await this.enter('listBatches');
    const call = this.listCalls++;
    for (const b of [...this.batches.values()].reverse()) if (b.visibleAt <= call) yield this.info(b.name);
  }

  async cancelBatch(name: string): Promise<void> {
    this.cancelCalls.push(name);
    await this.enter('cancelBatch');
    const b = this.batches.get(name);
    if (!b) throw new GeminiCallError(`${name} not found`, 404, {});
    if (ENDED.includes(b.state)) return;
    this.onCancel?.(this.info(name));
    b.state = 'CANCELLED';
  }

  async *responseLines(file: string): AsyncIterable<string> {
    this.downloads++;
    await this.enter('responseLines');
    const lines = this.files.get(file);
    if (!lines) throw new GeminiCallError(`${file} not found`, 404, {});
    for (const line of lines) yield line;
  }

  async deleteFile(name: string): Promise<void> {
    await roundTrip();
    this.deleted.push(name);
    this.files.delete(name);
  }

  /** Test setup: the batch turns `state` with a responses file answering `keys` (an answer each). */
  end(name: string, state: BatchState, keys: string[]): void {
    const b = this.batches.get(name);
    if (!b) throw new Error(`no batch ${name}`);
    const out = `files/out-${++this.seq}`;
    this.files.set(out, keys.map(answerLine));
    Object.assign(b, { state, responsesFile: out });
  }

  /** Test setup: the batch's state, nothing else. */
  setState(name: string, state: BatchState): void {
    const b = this.batches.get(name);
    if (!b) throw new Error(`no batch ${name}`);
    b.state = state;
  }

  private info(name: string): BatchInfo {
    const { file: _file, visibleAt: _visibleAt, ...info } = structuredClone(this.batches.get(name)!);
    return info;
  }
}

/** A responses file line answering item `key`. */
export function answerLine(key: string): string {
  return JSON.stringify({
    key,
    response: {
      candidates: [{ content: { role: 'model', parts: [{ text: `answer ${key}` }] } }],
      usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 4 },
    },
  });
}

/** Batch runs in memory: versions as preconditions, as `batch-runs.ts` keeps them in Firestore. */
export class FakeBatchRuns implements BatchRunsStore {
  readonly runs = new Map<string, BatchRun>();
  private seq = 0;

  async createMany(list: Array<BatchPart & { jobId: string; model: string; displayName: string }>) {
    await roundTrip();
    for (const r of list) {
      const id = `${r.jobId}-p${r.part}`;
      if (this.runs.has(id)) continue;
      this.runs.set(id, {
        ...structuredClone(r),
        id,
        state: 'staged',
        leaseUntilMs: null,
        fileName: null,
        batchName: null,
        createStartedMs: null,
        deferredSinceMs: null,
        createdAtMs: null,
        upstream: null,
        stats: null,
        fallback: null,
        rerouted: 0,
        lastError: null,
        stepFailures: 0,
        stepSince: null,
        cancelReason: null,
        ambiguousCreate: false,
        version: `r${++this.seq}`,
      });
    }
  }

  async listOpen(limit: number): Promise<BatchRun[]> {
    await roundTrip();
    return [...this.runs.values()]
      .filter((r) => OPEN_RUN_STATES.includes(r.state))
      .slice(0, limit)
      .map((r) => structuredClone(r));
  }

  async listForJob(jobId: string): Promise<BatchRun[]> {
    await roundTrip();
    return [...this.runs.values()]
      .filter((r) => r.jobId === jobId)
      .sort((a, b) => a.part - b.part)
      .map((r) => structuredClone(r));
  }

  async findByBatchName(batchName: string): Promise<BatchRun | undefined> {
    await roundTrip();
    const run = [...this.runs.values()].find((r) => r.batchName === batchName);
    return run && structuredClone(run);
  }

  async update(run: BatchRun, patch: Partial<BatchRun>): Promise<string | undefined> {
    await roundTrip();
    const stored = this.runs.get(run.id);
    if (!stored || stored.version !== run.version) return undefined;
    Object.assign(stored, structuredClone(patch), { version: `r${++this.seq}` });
    return stored.version;
  }
}

/** A job's items in bulk over the fake database; batch outcomes are not counted in the shards. */
export class FakeBatchItems implements BatchItemsStore {
  private seq = 0;
  constructor(
    private readonly db: FakeDb,
    private readonly clock: () => number = Date.now,
  ) {}

  private all(jobId: string) {
    return [...(this.db.items.get(jobId)?.values() ?? [])];
  }

  async heads(jobId: string, itemIds: string[]) {
    await roundTrip();
    const out = new Map<string, { state: string; batchPart: number | null; version: string }>();
    for (const id of itemIds) {
      const i = this.db.item(jobId, id);
      if (i) out.set(id, { state: i.state, batchPart: i.batchPart ?? null, version: i.version });
    }
    return out;
  }

  async settleMany(
    jobId: string,
    writes: Array<{ itemId: string; version: string; outcome: StoredOutcome }>,
  ) {
    await roundTrip();
    let landed = 0;
    for (const w of writes) {
      const i = this.db.item(jobId, w.itemId);
      if (!i || i.version !== w.version) continue;
      this.apply(i, w.outcome);
      landed++;
    }
    return landed;
  }

  async sweepPart(
    jobId: string,
    part: number,
    action: { kind: 'reroute'; dueByMs: number } | { kind: 'fail'; outcome: StoredOutcome },
  ) {
    await roundTrip();
    let changed = 0;
    for (const i of this.all(jobId)) {
      if (i.state !== 'pending' || i.batchPart !== part) continue;
      if (action.kind === 'reroute') {
        delete i.batchPart;
        Object.assign(i, { dueByMs: action.dueByMs });
        i.version = `bi${++this.seq}`;
      } else this.apply(i, action.outcome);
      changed++;
    }
    return changed;
  }

  async countPart(jobId: string, part: number): Promise<CounterValues> {
    await roundTrip();
    const c = {
      succeeded: 0,
      failed: 0,
      cancelled: 0,
      promptTokens: 0,
      outputTokens: 0,
      costUsd: 0,
      standardCostUsd: 0,
    };
    for (const i of this.all(jobId)) {
      if (i.batchPart !== part || i.state === 'pending') continue;
      c[i.state] += 1;
      c.promptTokens += i.usage?.promptTokens ?? 0;
      c.outputTokens += i.usage?.outputTokens ?? 0;
      c.costUsd += i.costUsd ?? 0;
      c.standardCostUsd += i.standardCostUsd ?? 0;
    }
    return c;
  }

  private apply(i: ItemRecord, outcome: StoredOutcome): void {
    i.state = outcome.state;
    if (outcome.state === 'succeeded') {
      if (outcome.responseObject) i.responseObject = outcome.responseObject;
      else i.response = outcome.responseJson ? JSON.parse(outcome.responseJson) : outcome.response;
    } else i.error = outcome.error;
    if (outcome.usage) i.usage = outcome.usage;
    if (outcome.costUsd !== undefined) i.costUsd = outcome.costUsd;
    if (outcome.state === 'succeeded' && outcome.tier) {
      i.tier = outcome.tier;
      i.standardCostUsd = outcome.standardCostUsd ?? outcome.costUsd ?? 0;
    }
    i.finishedAt = new Date(this.clock());
    i.lease = null;
    i.version = `bi${++this.seq}`;
  }
}

/** The batch stores over a fake database. */
export function fakeBatchApiStores(
  db: FakeDb,
  clock: () => number = Date.now,
): BatchApiStores & {
  runs: FakeBatchRuns;
  items: FakeBatchItems;
} {
  return { runs: new FakeBatchRuns(), items: new FakeBatchItems(db, clock) };
}
