import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { finished } from 'node:stream/promises';
import { type Prng, shuffleInPlace } from '../prng.js';
import type { GeminiStandInConfig } from './config.js';
import { entityNotFound, invalidArgument, StandInHttpError } from './errors.js';
import { batchLineFault, markerFault } from './faults.js';
import type { FileStore } from './files.js';
import { fileIdOf, fileNotActive } from './files.js';
import { answerShape, buildResponse, fileUris, promptText, validateGenerateRequest } from './generate.js';
import { pageNewestFirst, sleep } from './http.js';
import { newResourceId } from './ids.js';
import { fileLines } from './lines.js';
import { batchQuotaExceededError } from './quota.js';
import type { StatsRecorder } from './stats.js';
import { countRequestTokens, requestTokens } from './tokens.js';

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
  /** Aborted when the batch ends, is deleted or the server closes: its run stops answering. */
  stop: AbortController;
  /** Its run, once RUNNING: what it writes (a partial output too) is done when this settles. */
  running?: Promise<void>;
}

/** One input line (or inline entry) to answer, or the error line it already is. */
interface Entry {
  key?: unknown;
  metadata?: unknown;
  request?: unknown;
  result?: LineResult;
}

type LineResult = { response: Json } | { error: RpcError };

/** What the batch store needs from the server. */
export interface BatchDeps {
  files: FileStore;
  config: () => GeminiStandInConfig;
  prng: () => Prng;
  clock: () => number;
  stats: StatsRecorder;
  /** Called once a batch has ended and its output is written, with its resource (webhooks.ts). */
  onEnded?: (resource: Json) => void;
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

/** The transient errors `batch.transientLineShare` draws from. */
const TRANSIENT_LINE_ERRORS = ['429', '500', '503'] as const;

function faultError(kind: string): RpcError {
  if (kind.startsWith('429')) return FAULT_ERRORS['429'] as RpcError;
  if (kind === 'timeout') return FAULT_ERRORS['504'] as RpcError;
  if (kind === 'malformed') return FAULT_ERRORS['500'] as RpcError;
  return (FAULT_ERRORS[kind] ?? FAULT_ERRORS['500']) as RpcError;
}

async function write(stream: WriteStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain');
}

/** Ends a file stream and waits until it is written: `finished` also sees a finish already past. */
async function endStream(stream: WriteStream): Promise<void> {
  stream.end();
  await finished(stream);
}

/**
 * Where a run's answers go: kept in input order for an inline batch; for a file batch, written to a
 * temp file as they come (remembering where each line starts), then copied in a seeded-shuffled
 * order into the GENERATED responses file: bounded memory whatever the file size.
 */
interface OutputSink {
  readonly size: number;
  add(entry: Entry, result: LineResult): Promise<void>;
  /** The batch's `output` from what was added. */
  finish(): Promise<Json>;
  /** Removes temp files (after finish or instead of it). */
  discard(): Promise<void>;
}

class InlineSink implements OutputSink {
  private readonly out: Json[] = [];
  get size(): number {
    return this.out.length;
  }
  async add(entry: Entry, result: LineResult): Promise<void> {
    this.out.push({ ...result, ...(entry.metadata !== undefined ? { metadata: entry.metadata } : {}) });
  }
  async finish(): Promise<Json> {
    return { inlinedResponses: { inlinedResponses: this.out } };
  }
  async discard(): Promise<void> {}
}

class FileSink implements OutputSink {
  private readonly ordered: string;
  private readonly shuffled: string;
  private sink: WriteStream | undefined;
  private readonly offsets: number[] = [];
  private readonly lengths: number[] = [];
  private position = 0;

  constructor(
    private readonly batchId: string,
    private readonly deps: BatchDeps,
  ) {
    this.ordered = deps.files.tempPath();
    this.shuffled = deps.files.tempPath();
  }

  get size(): number {
    return this.offsets.length;
  }

  async add(entry: Entry, result: LineResult): Promise<void> {
    this.sink ??= createWriteStream(this.ordered);
    const text = `${JSON.stringify({ ...(entry.key !== undefined ? { key: entry.key } : {}), ...result })}\n`;
    const bytes = Buffer.byteLength(text);
    this.offsets.push(this.position);
    this.lengths.push(bytes);
    this.position += bytes;
    await write(this.sink, text);
  }

  async finish(): Promise<Json> {
    this.sink ??= createWriteStream(this.ordered);
    await endStream(this.sink);
    const order = shuffleInPlace(
      this.offsets.map((_, i) => i),
      this.deps.prng(),
    );
    const source = await open(this.ordered, 'r');
    try {
      const out = createWriteStream(this.shuffled);
      for (const i of order) {
        const buf = Buffer.alloc(this.lengths[i] as number);
        await source.read(buf, 0, buf.length, this.offsets[i] as number);
        if (!out.write(buf)) await once(out, 'drain');
      }
      await endStream(out);
    } finally {
      await source.close();
    }
    const file = await this.deps.files.adopt(
      `batch-${this.batchId}`,
      this.shuffled,
      'application/jsonl',
      'GENERATED',
    );
    return { responsesFile: `files/${file.id}` };
  }

  async discard(): Promise<void> {
    if (this.sink && !this.sink.closed) {
      this.sink.destroy();
      await once(this.sink, 'close').catch(() => undefined);
    }
    await rm(this.ordered, { force: true });
    await rm(this.shuffled, { force: true });
  }
}

/**
 * The Batch API: `models/{m}:batchGenerateContent` from an uploaded JSONL file or inline
 * requests, get / list / cancel / delete, and a lifecycle over time (PENDING → RUNNING → SUCCEEDED,
 * or FAILED / EXPIRED when told, or EXPIRED `expireAfterMs` after creation). A file batch's results
 * become a GENERATED file `files/batch-{id}` whose lines come out in shuffled order, as upstream
 * gives no order guarantee. With `progressive`, lines are answered across `runningMs` (batchStats
 * move while RUNNING); with `partialOutput`, a batch cancelled or expired while RUNNING keeps the
 * lines answered so far.
 */
export class BatchStore {
  private readonly batches = new Map<string, Batch>();

  constructor(private readonly deps: BatchDeps) {}

  /** Creates a batch and starts its clock; answers the Operation the real API returns. */
  async create(model: string, body: unknown): Promise<Json> {
    const batch = isRecord(body) && isRecord(body.batch) ? body.batch : undefined;
    if (!batch) throw invalidArgument('* BatchGenerateContentRequest.batch: batch is not specified\n');
    if (
      this.deps.config().batch.requireDisplayName &&
      (typeof batch.displayName !== 'string' || batch.displayName.trim() === '')
    ) {
      throw invalidArgument('* BatchGenerateContentRequest.batch.display_name: display_name is required\n');
    }
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
      stop: new AbortController(),
      ...(typeof batch.displayName === 'string' ? { displayName: batch.displayName } : {}),
      ...(inline ? { inline } : {}),
    };
    this.batches.set(record.id, record);
    this.deps.stats.batchCreated(model, requestCount);
    const { pendingMs, expireAfterMs } = this.deps.config().batch;
    record.timers.push(
      setTimeout(() => {
        if (record.state !== 'BATCH_STATE_PENDING') return;
        record.state = 'BATCH_STATE_RUNNING';
        record.updateTime = this.deps.clock();
        record.running = this.run(record);
      }, pendingMs),
    );
    if (expireAfterMs !== null) {
      record.timers.push(
        setTimeout(() => {
          if (!TERMINAL.includes(record.state)) this.end(record, 'BATCH_STATE_EXPIRED');
        }, expireAfterMs),
      );
    }
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
    return isRecord(request)
      ? requestTokens(request, this.deps.config().tokens, (uri) => this.deps.files.info(uri))
      : 0;
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

  /** The lines of a batch's input (inline entries or the JSONL file), a bad JSON line as its error. */
  private async *entries(batch: Batch, inline: unknown[] | undefined): AsyncGenerator<Entry> {
    if (inline) {
      for (const item of inline) {
        const entry = isRecord(item) ? item : {};
        yield { metadata: entry.metadata, request: entry.request };
      }
      return;
    }
    const input = this.deps.files.require(fileIdOf(batch.inputConfig.fileName as string) as string);
    for await (const line of fileLines(input.path)) {
      if (line.trim() === '') continue;
      try {
        const parsed: unknown = JSON.parse(line);
        yield isRecord(parsed) ? { key: parsed.key, request: parsed.request } : { request: undefined };
      } catch {
        yield {
          result: {
            error: { code: 400, status: 'INVALID_ARGUMENT', message: 'Invalid JSON payload received.' },
          },
        };
      }
    }
  }

  /**
   * Runs a RUNNING batch to its end. A forced outcome (`[[batch:fail]]`, `[[batch:expire]]`,
   * `forceOutcome`) or a batch that is not `progressive` waits `runningMs` first; then its lines are
   * answered, each at its share of `runningMs` when `progressive`. The run stops as soon as the batch
   * ends otherwise (cancel, expiry, delete, close): what it answered becomes the ended batch's output
   * when `partialOutput` is on.
   */
  private async run(batch: Batch): Promise<void> {
    const { runningMs, progressive, forceOutcome } = this.deps.config().batch;
    const inline = batch.inline;
    const marker = /\[\[batch:(fail|expire)\]\]/.exec(batch.displayName ?? '')?.[1];
    const outcome = marker ?? forceOutcome;
    const stopped = () => batch.stop.signal.aborted || batch.state !== 'BATCH_STATE_RUNNING';
    if (outcome || !progressive) {
      await sleep(runningMs, batch.stop.signal);
      if (stopped()) return;
    }
    if (outcome === 'expire') return this.end(batch, 'BATCH_STATE_EXPIRED');
    if (outcome === 'fail') {
      batch.error = {
        code: 13,
        message: 'Batch failed: an internal error occurred while processing the batch.',
      };
      return this.end(batch, 'BATCH_STATE_FAILED');
    }
    const sink: OutputSink = inline ? new InlineSink() : new FileSink(batch.id, this.deps);
    const started = performance.now();
    try {
      let i = 0;
      for await (const entry of this.entries(batch, inline)) {
        if (progressive) {
          const wait = started + (runningMs * (i + 1)) / Math.max(1, batch.requestCount) - performance.now();
          if (wait > 10) await sleep(wait, batch.stop.signal);
        }
        if (stopped()) break;
        const result = entry.result ?? this.answer(batch, entry.request);
        if ('error' in result) batch.failed++;
        else batch.succeeded++;
        batch.updateTime = this.deps.clock();
        await sink.add(entry, result);
        i++;
      }
      if (!stopped()) {
        const output = await sink.finish();
        if (batch.state === 'BATCH_STATE_RUNNING') {
          batch.output = output;
          this.end(batch, 'BATCH_STATE_SUCCEEDED');
        }
        return;
      }
      const ended = batch.state === 'BATCH_STATE_CANCELLED' || batch.state === 'BATCH_STATE_EXPIRED';
      if (ended && this.batches.has(batch.id) && this.deps.config().batch.partialOutput && sink.size > 0) {
        batch.output = await sink.finish();
      }
    } catch (error) {
      if (batch.state !== 'BATCH_STATE_RUNNING') return;
      batch.error = {
        code: 13,
        message: `Batch failed: ${error instanceof Error ? error.message : String(error)}`,
      };
      this.end(batch, 'BATCH_STATE_FAILED');
    } finally {
      await sink.discard();
    }
  }

  private end(batch: Batch, state: BatchState): void {
    batch.state = state;
    batch.endTime = batch.updateTime = this.deps.clock();
    for (const t of batch.timers) clearTimeout(t);
    batch.timers = [];
    batch.stop.abort();
    delete batch.inline;
    // Once its run has stopped: a partial output is written after the end itself.
    const ended = () => this.deps.onEnded?.(this.resource(batch));
    void Promise.resolve(batch.running).then(ended, ended);
  }

  /**
   * One input line's result: a response or an error, by markers, files not ACTIVE yet and the
   * failing-line share. The response has the same shape (thinking, odd answers) as a realtime one.
   */
  private answer(batch: Batch, request: unknown): LineResult {
    let valid: Json;
    try {
      valid = validateGenerateRequest(request);
    } catch (error) {
      const message = error instanceof StandInHttpError ? error.body.error.message : String(error);
      return { error: { code: 400, status: 'INVALID_ARGUMENT', message } };
    }
    for (const uri of fileUris(valid)) {
      const id = fileIdOf(uri);
      const file = id === undefined ? undefined : this.deps.files.get(id);
      if (file && this.deps.files.stateOf(file) !== 'ACTIVE') {
        const body = fileNotActive(file.id).body.error;
        return { error: { code: body.code, status: body.status, message: body.message } };
      }
    }
    const prompt = promptText(valid);
    const fault = batchLineFault(prompt) ?? markerFault(prompt);
    if (fault) return { error: faultError(fault) };
    const config = this.deps.config();
    if (this.deps.prng()() < config.batch.failedLineShare) return { error: faultError('500') };
    const transient = config.batch.transientLineShare;
    if (transient > 0 && this.deps.prng()() < transient) {
      return { error: faultError(TRANSIENT_LINE_ERRORS[Math.floor(this.deps.prng()() * 3)] ?? '503') };
    }
    const count = countRequestTokens(valid, config.tokens, (uri) => this.deps.files.info(uri));
    const shape = answerShape(batch.model, valid, count.total, config.answers, this.deps.prng());
    return {
      response: buildResponse(batch.model, valid, count, {
        shape,
        rule: config.tokens,
        tokenDetails: config.answers.tokenDetails,
      }),
    };
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
    const { page, nextPageToken } = pageNewestFirst(this.batches.values(), pageSize, pageToken);
    return { operations: page.map((b) => this.resource(b)), ...(nextPageToken ? { nextPageToken } : {}) };
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
    batch.stop.abort();
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
      b.stop.abort();
    }
  }
}
