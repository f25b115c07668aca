import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { type Prng, shuffleInPlace } from '../prng.js';
import type { GeminiStandInConfig } from './config.js';
import { entityNotFound, invalidArgument, StandInHttpError } from './errors.js';
import { markerFault } from './faults.js';
import type { FileStore } from './files.js';
import { fileIdOf } from './files.js';
import { buildResponse, promptText, validateGenerateRequest } from './generate.js';
import { newResourceId } from './ids.js';
import { fileLines } from './lines.js';
import { batchQuotaExceededError } from './quota.js';
import type { StatsRecorder } from './stats.js';
import { requestTokens } from './tokens.js';

/** Batch states as the REST API names them (the SDK maps them to `JOB_STATE_*`). */
export type BatchState =
  | 'BATCH_STATE_PENDING'
  | 'BATCH_STATE_RUNNING'
  | 'BATCH_STATE_SUCCEEDED'
  | 'BATCH_STATE_FAILED'
  | 'BATCH_STATE_CANCELLED'
  | 'BATCH_STATE_EXPIRED';

const TERMINAL: BatchState[] = [
  'BATCH_STATE_SUCCEEDED',
  'BATCH_STATE_FAILED',
  'BATCH_STATE_CANCELLED',
  'BATCH_STATE_EXPIRED',
];

const BATCH_TYPE = 'type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch';
const OUTPUT_TYPE = 'type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput';

type Json = Record<string, unknown>;

interface RpcError {
  code: number;
  message: string;
  status: string;
}

interface Batch {
  id: string;
  model: string;
  displayName?: string;
  inputConfig: Json;
  inline?: unknown[];
  requestCount: number;
  /** Input tokens of its requests by the token rule: what it holds of the model's enqueued-token cap. */
  tokens: number;
  succeeded: number;
  failed: number;
  state: BatchState;
  createTime: number;
  updateTime: number;
  endTime?: number;
  output?: Json;
  error?: { code: number; message: string };
  timers: NodeJS.Timeout[];
}

/** What the batch store needs from the server. */
export interface BatchDeps {
  files: FileStore;
  config: () => GeminiStandInConfig;
  prng: () => Prng;
  clock: () => number;
  stats: StatsRecorder;
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const FAULT_ERRORS: Record<string, RpcError> = {
  '400': { code: 400, status: 'INVALID_ARGUMENT', message: 'Request contains an invalid argument.' },
  '429': {
    code: 429,
    status: 'RESOURCE_EXHAUSTED',
    message: 'Resource has been exhausted (e.g. check quota).',
  },
  '500': { code: 500, status: 'INTERNAL', message: 'Internal error encountered.' },
  '503': { code: 503, status: 'UNAVAILABLE', message: 'The model is overloaded. Please try again later.' },
  '504': {
    code: 504,
    status: 'DEADLINE_EXCEEDED',
    message: 'Deadline expired before operation could complete.',
  },
};

function faultError(kind: string): RpcError {
  if (kind.startsWith('429')) return FAULT_ERRORS['429'] as RpcError;
  if (kind === 'timeout') return FAULT_ERRORS['504'] as RpcError;
  if (kind === 'malformed') return FAULT_ERRORS['500'] as RpcError;
  return (FAULT_ERRORS[kind] ?? FAULT_ERRORS['500']) as RpcError;
}

async function write(stream: WriteStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain');
}

async function endStream(stream: WriteStream): Promise<void> {
  stream.end();
  await once(stream, 'finish');
}

/**
 * The Batch API: `models/{m}:batchGenerateContent` from an uploaded JSONL file or inline
 * requests, get / list / cancel / delete, and a lifecycle over time (PENDING → RUNNING → SUCCEEDED,
 * or FAILED / EXPIRED when told). A file batch's results become a GENERATED file `files/batch-{id}`
 * whose lines come out in shuffled order, as upstream gives no order guarantee.
 */
export class BatchStore {
  private readonly batches = new Map<string, Batch>();

  constructor(private readonly deps: BatchDeps) {}

  /** Creates a batch and starts its clock; answers the Operation the real API returns. */
  async create(model: string, body: unknown): Promise<Json> {
    const batch = isRecord(body) && isRecord(body.batch) ? body.batch : undefined;
    if (!batch) throw invalidArgument('* BatchGenerateContentRequest.batch: batch is not specified\n');
    const input = isRecord(batch.inputConfig) ? batch.inputConfig : undefined;
    const fileName = input?.fileName;
    const requests = isRecord(input?.requests) ? input.requests.requests : undefined;
    if (!input || (fileName === undefined) === (requests === undefined)) {
      throw invalidArgument(
        '* BatchGenerateContentRequest.batch.input_config: exactly one of file_name or requests must be set\n',
      );
    }
    let size: { requests: number; tokens: number };
    let inline: unknown[] | undefined;
    if (typeof fileName === 'string') {
      const id = fileIdOf(fileName);
      if (id === undefined) throw invalidArgument(`Invalid file name: ${fileName}`);
      size = await this.measureFile(this.deps.files.require(id).path);
    } else {
      if (!Array.isArray(requests) || requests.length === 0) {
        throw invalidArgument(
          '* BatchGenerateContentRequest.batch.input_config.requests: requests must not be empty\n',
        );
      }
      inline = requests;
      size = { requests: requests.length, tokens: 0 };
      for (const entry of requests) size.tokens += this.tokensOf(isRecord(entry) ? entry.request : undefined);
    }
    // No await from here on: the caps are checked and the batch recorded in one step.
    this.admit(model, size.tokens);
    const requestCount = size.requests;
    const now = this.deps.clock();
    const record: Batch = {
      id: newResourceId(40),
      model,
      inputConfig: input,
      requestCount,
      tokens: size.tokens,
      succeeded: 0,
      failed: 0,
      state: 'BATCH_STATE_PENDING',
      createTime: now,
      updateTime: now,
      timers: [],
      ...(typeof batch.displayName === 'string' ? { displayName: batch.displayName } : {}),
      ...(inline ? { inline } : {}),
    };
    this.batches.set(record.id, record);
    this.deps.stats.batchCreated(model, requestCount);
    const { pendingMs, runningMs } = this.deps.config().batch;
    record.timers.push(
      setTimeout(() => {
        if (record.state !== 'BATCH_STATE_PENDING') return;
        record.state = 'BATCH_STATE_RUNNING';
        record.updateTime = this.deps.clock();
        record.timers.push(setTimeout(() => void this.finish(record), runningMs));
      }, pendingMs),
    );
    return this.resource(record);
  }

  /** Requests (non-blank lines) of a JSONL input file and their input tokens; a bad line costs none. */
  private async measureFile(path: string): Promise<{ requests: number; tokens: number }> {
    const size = { requests: 0, tokens: 0 };
    for await (const line of fileLines(path)) {
      if (line.trim() === '') continue;
      size.requests++;
      try {
        const parsed: unknown = JSON.parse(line);
        size.tokens += this.tokensOf(isRecord(parsed) ? parsed.request : undefined);
      } catch {
        // Answered with an error line when the batch runs.
      }
    }
    return size;
  }

  private tokensOf(request: unknown): number {
    return isRecord(request) ? requestTokens(request, (uri) => this.deps.files.sizeOf(uri)) : 0;
  }

  /**
   * Refuses a batch that would break a cap with the 429 upstream answers: more than
   * `batch.maxConcurrent` PENDING or RUNNING batches, or more than the model's
   * `batch.enqueuedTokenLimit` input tokens held by its PENDING and RUNNING batches.
   */
  private admit(model: string, tokens: number): void {
    const { maxConcurrent, enqueuedTokenLimit } = this.deps.config().batch;
    const open = [...this.batches.values()].filter((b) => !TERMINAL.includes(b.state));
    if (open.length + 1 > maxConcurrent) throw batchQuotaExceededError('concurrent-batches');
    const limit =
      enqueuedTokenLimit === null || typeof enqueuedTokenLimit === 'number'
        ? enqueuedTokenLimit
        : model in enqueuedTokenLimit
          ? enqueuedTokenLimit[model]
          : enqueuedTokenLimit['*'];
    if (limit == null) return;
    const held = open.filter((b) => b.model === model).reduce((sum, b) => sum + b.tokens, 0);
    if (held + tokens > limit) throw batchQuotaExceededError('enqueued-tokens');
  }

  private async finish(batch: Batch): Promise<void> {
    if (batch.state !== 'BATCH_STATE_RUNNING') return;
    const config = this.deps.config();
    const marker = /\[\[batch:(fail|expire)\]\]/.exec(batch.displayName ?? '')?.[1];
    const outcome = marker ?? config.batch.forceOutcome;
    if (outcome === 'expire') return this.end(batch, 'BATCH_STATE_EXPIRED');
    if (outcome === 'fail') {
      batch.error = {
        code: 13,
        message: 'Batch failed: an internal error occurred while processing the batch.',
      };
      return this.end(batch, 'BATCH_STATE_FAILED');
    }
    try {
      const output = batch.inline ? this.runInline(batch, batch.inline) : await this.runFile(batch);
      if (batch.state !== 'BATCH_STATE_RUNNING') return;
      batch.output = output;
      this.end(batch, 'BATCH_STATE_SUCCEEDED');
    } catch (error) {
      if (batch.state !== 'BATCH_STATE_RUNNING') return;
      batch.error = {
        code: 13,
        message: `Batch failed: ${error instanceof Error ? error.message : String(error)}`,
      };
      this.end(batch, 'BATCH_STATE_FAILED');
    }
  }

  private end(batch: Batch, state: BatchState): void {
    batch.state = state;
    batch.endTime = batch.updateTime = this.deps.clock();
    for (const t of batch.timers) clearTimeout(t);
    batch.timers = [];
    delete batch.inline;
  }

  /** One input line's result: a response or an error, by markers and the failing-line share. */
  private answer(batch: Batch, request: unknown): { response: Json } | { error: RpcError } {
    let valid: Json;
    try {
      valid = validateGenerateRequest(request);
    } catch (error) {
      const message = error instanceof StandInHttpError ? error.body.error.message : String(error);
      return { error: { code: 400, status: 'INVALID_ARGUMENT', message } };
    }
    const fault = markerFault(promptText(valid));
    if (fault) return { error: faultError(fault) };
    if (this.deps.prng()() < this.deps.config().batch.failedLineShare) return { error: faultError('500') };
    const tokens = requestTokens(valid, (uri) => this.deps.files.sizeOf(uri));
    return { response: buildResponse(batch.model, valid, tokens) };
  }

  private runInline(batch: Batch, inline: unknown[]): Json {
    const out = inline.map((item) => {
      const entry = isRecord(item) ? item : {};
      const result = this.answer(batch, entry.request);
      if ('error' in result) batch.failed++;
      else batch.succeeded++;
      return { ...result, ...(entry.metadata !== undefined ? { metadata: entry.metadata } : {}) };
    });
    return { inlinedResponses: { inlinedResponses: out } };
  }

  /**
   * Answers the JSONL input line by line into a temp file (remembering where each line starts),
   * then copies the lines in a seeded-shuffled order into the output file: bounded memory whatever
   * the file size.
   */
  private async runFile(batch: Batch): Promise<Json> {
    const fileName = batch.inputConfig.fileName as string;
    const input = this.deps.files.require(fileIdOf(fileName) as string);
    const ordered = this.deps.files.tempPath();
    const shuffled = this.deps.files.tempPath();
    const offsets: number[] = [];
    const lengths: number[] = [];
    try {
      const sink = createWriteStream(ordered);
      let position = 0;
      for await (const line of fileLines(input.path)) {
        if (line.trim() === '') continue;
        let key: unknown;
        let result: { response: Json } | { error: RpcError };
        try {
          const parsed: unknown = JSON.parse(line);
          key = isRecord(parsed) ? parsed.key : undefined;
          result = this.answer(batch, isRecord(parsed) ? parsed.request : undefined);
        } catch {
          result = {
            error: { code: 400, status: 'INVALID_ARGUMENT', message: 'Invalid JSON payload received.' },
          };
        }
        if ('error' in result) batch.failed++;
        else batch.succeeded++;
        const text = `${JSON.stringify({ ...(key !== undefined ? { key } : {}), ...result })}\n`;
        const bytes = Buffer.byteLength(text);
        offsets.push(position);
        lengths.push(bytes);
        position += bytes;
        await write(sink, text);
      }
      await endStream(sink);
      const order = shuffleInPlace(
        offsets.map((_, i) => i),
        this.deps.prng(),
      );
      const source = await open(ordered, 'r');
      try {
        const out = createWriteStream(shuffled);
        for (const i of order) {
          const buf = Buffer.alloc(lengths[i] as number);
          await source.read(buf, 0, buf.length, offsets[i] as number);
          if (!out.write(buf)) await once(out, 'drain');
        }
        await endStream(out);
      } finally {
        await source.close();
      }
      const file = await this.deps.files.adopt(
        `batch-${batch.id}`,
        shuffled,
        'application/jsonl',
        'GENERATED',
      );
      return { responsesFile: `files/${file.id}` };
    } finally {
      await rm(ordered, { force: true });
      await rm(shuffled, { force: true });
    }
  }

  private require(id: string): Batch {
    const batch = this.batches.get(id);
    if (!batch) throw entityNotFound();
    return batch;
  }

  /** The long-running Operation the REST API returns for a batch. */
  resource(batch: Batch): Json {
    const done = TERMINAL.includes(batch.state);
    const stats: Record<string, string> = { requestCount: String(batch.requestCount) };
    // int64 fields are strings and, proto3-style, zero counts are left out.
    if (batch.succeeded > 0) stats.successfulRequestCount = String(batch.succeeded);
    if (batch.failed > 0) stats.failedRequestCount = String(batch.failed);
    const pending = done ? 0 : batch.requestCount - batch.succeeded - batch.failed;
    if (pending > 0) stats.pendingRequestCount = String(pending);
    const name = `batches/${batch.id}`;
    return {
      name,
      metadata: {
        '@type': BATCH_TYPE,
        model: `models/${batch.model}`,
        ...(batch.displayName !== undefined ? { displayName: batch.displayName } : {}),
        inputConfig: batch.inputConfig,
        ...(batch.output ? { output: batch.output } : {}),
        createTime: new Date(batch.createTime).toISOString(),
        ...(batch.endTime !== undefined ? { endTime: new Date(batch.endTime).toISOString() } : {}),
        updateTime: new Date(batch.updateTime).toISOString(),
        batchStats: stats,
        state: batch.state,
        name,
      },
      ...(done ? { done: true } : {}),
      ...(batch.output ? { response: { '@type': OUTPUT_TYPE, ...batch.output } } : {}),
      ...(batch.error ? { error: batch.error } : {}),
    };
  }

  /** `GET batches/{id}`. */
  get(id: string): Json {
    return this.resource(this.require(id));
  }

  /** `GET batches` with pageSize (default 10, at most 100) and pageToken; newest first. */
  list(pageSize: number | undefined, pageToken: string | undefined): Json {
    const size = Math.min(100, Math.max(1, pageSize ?? 10));
    const start = pageToken ? Number(Buffer.from(pageToken, 'base64url').toString('utf8')) : 0;
    if (!Number.isInteger(start) || start < 0) throw invalidArgument('Invalid page token.');
    const all = [...this.batches.values()].sort(
      (a, b) => b.createTime - a.createTime || a.id.localeCompare(b.id),
    );
    const page = all.slice(start, start + size);
    const next =
      start + size < all.length ? Buffer.from(String(start + size)).toString('base64url') : undefined;
    return { operations: page.map((b) => this.resource(b)), ...(next ? { nextPageToken: next } : {}) };
  }

  /** `POST batches/{id}:cancel`: a pending or running batch becomes CANCELLED; a finished one stays. */
  cancel(id: string): void {
    const batch = this.require(id);
    if (!TERMINAL.includes(batch.state)) this.end(batch, 'BATCH_STATE_CANCELLED');
  }

  /** `DELETE batches/{id}`. */
  delete(id: string): void {
    const batch = this.require(id);
    for (const t of batch.timers) clearTimeout(t);
    this.batches.delete(id);
  }

  /** Count of batches by state. */
  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const b of this.batches.values()) out[b.state] = (out[b.state] ?? 0) + 1;
    return out;
  }

  /** Stops every lifecycle timer (server shutdown). */
  close(): void {
    for (const b of this.batches.values()) {
      for (const t of b.timers) clearTimeout(t);
      b.timers = [];
    }
  }
}
