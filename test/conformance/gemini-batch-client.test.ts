import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type BatchApi, type BatchInfo, createBatchApi } from '../../functions/platform/gemini/batch-api.js';
import { GeminiCallError } from '../../functions/platform/gemini/client.js';
import { UploadAnswerError } from '../../functions/platform/gemini/files-upload.js';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';

const MODEL = 'gemini-2.5-flash';
/** Small, so a few thousand lines make several chunks. */
const GRANULARITY = 256 * 1024;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'EXPIRED'];

/** One JSONL line; multi-byte text, so chunk edges fall inside characters. */
function line(i: number, text = `prompt ${i}`): string {
  const request = {
    contents: [{ role: 'user', parts: [{ text: `${text} naïve ☕ 🚀 ${'x'.repeat(i % 300)}` }] }],
  };
  return `${JSON.stringify({ key: `k${i}`, request })}\n`;
}

/**
 * `count` lines in irregular pieces — strings and bytes, several lines or part of one, a byte piece
 * cut inside a character — as a transformed stream would hand them over.
 */
async function* jsonl(count: number, textOf?: (i: number) => string): AsyncGenerator<Uint8Array | string> {
  let held = '';
  for (let i = 0; i < count; i++) {
    held += line(i, textOf?.(i));
    if (i % 11 === 0) {
      const bytes = Buffer.from(held);
      yield bytes.subarray(0, 7);
      yield bytes.subarray(7);
    } else if (i % 7 === 3) yield Buffer.from(held);
    else if (i % 5 === 0) yield held;
    else continue;
    held = '';
  }
  if (held) yield held;
}

async function sha256Of(source: AsyncIterable<Uint8Array | string>): Promise<string> {
  const hash = createHash('sha256');
  for await (const piece of source) hash.update(piece);
  return hash.digest('hex');
}

/** One request an upload sent, as the fetch wrapper saw it. */
interface Sent {
  command: string;
  offset?: number;
  bytes: number;
}

/**
 * A fetch that records upload requests and fails the first one matching `fault` once: `before`
 * never reaches the server, `cut` sends half its body and breaks, `after` reaches the server and
 * loses the answer. `always` fails every match.
 */
function flakyFetch(
  sent: Sent[],
  fault?: { command: string; offset?: number; how: 'before' | 'cut' | 'after'; always?: boolean },
): typeof fetch {
  let failed = false;
  return async (input, rawInit) => {
    // Chunks arrive as one-piece streams; read them here so faults can cut them in half.
    const init =
      rawInit?.body instanceof ReadableStream
        ? { ...rawInit, body: new Uint8Array(await new Response(rawInit.body).arrayBuffer()) }
        : rawInit;
    const headers = new Headers(init?.headers);
    const command = headers.get('x-goog-upload-command');
    const offset = headers.has('x-goog-upload-offset')
      ? Number(headers.get('x-goog-upload-offset'))
      : undefined;
    const body = init?.body instanceof Uint8Array ? init.body : undefined;
    if (command)
      sent.push({ command, ...(offset !== undefined ? { offset } : {}), bytes: body?.length ?? 0 });
    const hit =
      fault &&
      (fault.always || !failed) &&
      command === fault.command &&
      (fault.offset === undefined || fault.offset === offset);
    if (!hit) return fetch(input, init);
    failed = true;
    if (fault.how === 'before') throw new TypeError('fetch failed');
    if (fault.how === 'after') {
      await (await fetch(input, init)).arrayBuffer();
      throw new TypeError('fetch failed');
    }
    const half = (body ?? new Uint8Array()).subarray(0, (body?.length ?? 0) >> 1);
    const cut = new ReadableStream<Uint8Array>({
      start: (controller) => controller.enqueue(half),
      pull: (controller) => {
        setTimeout(() => controller.error(new Error('connection reset')), 50);
      },
    });
    return fetch(input, { ...init, body: cut, duplex: 'half' } as RequestInit);
  };
}

describe('Batch API client (createBatchApi) against the stand-in', () => {
  let standIn: GeminiStandIn;
  let api: BatchApi;

  beforeAll(async () => {
    standIn = await startGeminiStandIn({ seed: 3, files: { chunkGranularity: GRANULARITY } });
    api = createBatchApi({ apiKey: 'local', baseUrl: standIn.url, timeoutMs: 10_000 });
  });
  afterAll(() => standIn.close());
  beforeEach(() => {
    standIn.configure({
      batch: { pendingMs: 50, runningMs: 150, maxConcurrent: 100, enqueuedTokenLimit: null },
    });
  });
  afterEach(async () => {
    // Batches left open would count against the next test's caps.
    for await (const batch of api.listBatches()) {
      if (!TERMINAL.includes(batch.state)) await api.cancelBatch(batch.name);
    }
  });

  async function storedSha256(name: string): Promise<string> {
    const res = await fetch(`${standIn.url}/download/v1beta/${name}:download?alt=media`, {
      headers: { 'x-goog-api-key': 'local' },
    });
    return createHash('sha256')
      .update(Buffer.from(await res.arrayBuffer()))
      .digest('hex');
  }

  async function waitUntilDone(name: string): Promise<{ done: BatchInfo; seen: string[] }> {
    const seen = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const batch = await api.getBatch(name);
      seen.add(batch.state);
      if (TERMINAL.includes(batch.state)) return { done: batch, seen: [...seen] };
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`${name} did not finish`);
  }

  async function uploadSmall(displayName: string, lines: number, text = 'abcd'.repeat(25)) {
    const body = Array.from({ length: lines }, (_, i) =>
      JSON.stringify({ key: `s${i}`, request: { contents: [{ role: 'user', parts: [{ text }] }] } }),
    ).join('\n');
    return api.uploadJsonl(
      (async function* () {
        yield body;
      })(),
      { displayName },
    );
  }

  async function rejection(call: () => Promise<unknown>): Promise<GeminiCallError> {
    const error = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(error instanceof GeminiCallError))
      throw new Error(`expected a GeminiCallError, got ${String(error)}`);
    return error;
  }

  it('streams thousands of lines in granularity-sized chunks, the last one short, byte-identical', async () => {
    // Arrange
    const sent: Sent[] = [];
    const client = createBatchApi({ apiKey: 'local', baseUrl: standIn.url, fetch: flakyFetch(sent) });
    const expected = await sha256Of(jsonl(3000));
    // Act
    const file = await client.uploadJsonl(jsonl(3000), { displayName: 'three thousand lines' });
    // Assert
    const chunks = sent.filter((s) => s.command.startsWith('upload'));
    expect(sent[0]?.command).toBe('start');
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(chunks.slice(0, -1).every((c) => c.command === 'upload' && c.bytes === GRANULARITY)).toBe(true);
    expect(chunks.at(-1)?.command).toBe('upload, finalize');
    expect(chunks.at(-1)?.bytes).toBeGreaterThan(0);
    expect(chunks.at(-1)?.bytes).toBeLessThan(GRANULARITY);
    expect(chunks.map((c) => c.offset)).toEqual(chunks.map((_, i) => i * GRANULARITY));
    expect(file.name).toMatch(/^files\/[a-z0-9]+$/);
    expect(file.sizeBytes).toBe(chunks.reduce((sum, c) => sum + c.bytes, 0));
    expect(await storedSha256(file.name)).toBe(expected);
  });

  it('runs a batch to SUCCEEDED with counted stats and joins the shuffled responses back by key', async () => {
    // Arrange
    const count = 2000;
    const failing = (i: number) => i % 97 === 5;
    // Long enough for the create and the read after it to see PENDING on a loaded machine.
    standIn.configure({ batch: { pendingMs: 1000 } });
    const file = await api.uploadJsonl(
      jsonl(count, (i) => (failing(i) ? `prompt ${i} [[fault:500]]` : `prompt ${i}`)),
      { displayName: 'batch input' },
    );
    // Act
    const created = await api.createBatch(MODEL, file.name, 'nightly run 1');
    const { done, seen } = await waitUntilDone(created.name);
    const lines: Array<{ key: string; response?: unknown; error?: { code: number } }> = [];
    for await (const text of api.responseLines(done.responsesFile ?? '')) lines.push(JSON.parse(text));
    // Assert
    const failed = Array.from({ length: count }, (_, i) => i).filter(failing).length;
    expect(created).toMatchObject({ state: 'PENDING', displayName: 'nightly run 1' });
    expect(created.stats.requestCount).toBe(count);
    expect(created.name).toMatch(/^batches\//);
    expect(seen).toContain('RUNNING');
    expect(done.state).toBe('SUCCEEDED');
    expect(done.stats).toEqual({
      requestCount: count,
      successfulRequestCount: count - failed,
      failedRequestCount: failed,
      pendingRequestCount: 0,
    });
    expect(done.responsesFile).toMatch(/^files\//);
    const keys = lines.map((l) => l.key);
    const inOrder = Array.from({ length: count }, (_, i) => `k${i}`);
    expect([...keys].sort()).toEqual([...inOrder].sort());
    expect(keys).not.toEqual(inOrder);
    const byKey = new Map(lines.map((l) => [l.key, l]));
    expect(byKey.get('k5')?.error?.code).toBe(500);
    expect(byKey.get('k6')?.response).toBeDefined();
  });

  it('finds a batch by displayName in the list, past the first page', async () => {
    // Arrange: the wanted batch first, then a full page of newer ones.
    standIn.configure({ batch: { maxConcurrent: 1000 } });
    const file = await uploadSmall('list input', 1);
    const wanted = await api.createBatch(MODEL, file.name, 'job-42 batch');
    for (let i = 0; i < 100; i++) await api.createBatch(MODEL, file.name, `filler ${i}`);
    // Act
    let found: BatchInfo | undefined;
    let seen = 0;
    for await (const batch of api.listBatches()) {
      seen++;
      if (batch.displayName === 'job-42 batch') found = batch;
    }
    // Assert
    expect(seen).toBeGreaterThan(100);
    expect(found?.name).toBe(wanted.name);
  });

  it('cancels a pending batch', async () => {
    // Arrange
    standIn.configure({ batch: { pendingMs: 5_000 } });
    const file = await uploadSmall('cancel input', 3);
    const created = await api.createBatch(MODEL, file.name, 'to cancel');
    // Act
    await api.cancelBatch(created.name);
    const batch = await api.getBatch(created.name);
    // Assert
    expect(batch.state).toBe('CANCELLED');
    expect(batch.responsesFile).toBeUndefined();
  });

  it('deletes uploaded and generated files; a file already gone is not an error', async () => {
    // Arrange
    const file = await uploadSmall('delete input', 2);
    const { done } = await waitUntilDone((await api.createBatch(MODEL, file.name, 'to delete')).name);
    const output = done.responsesFile ?? '';
    // Act
    await api.deleteFile(file.name);
    await api.deleteFile(output);
    await api.deleteFile(file.name);
    // Assert
    for (const name of [file.name, output]) {
      const res = await fetch(`${standIn.url}/v1beta/${name}`, { headers: { 'x-goog-api-key': 'local' } });
      expect(res.status, name).toBe(403);
    }
    await expect(api.deleteFile('files/neverexisted')).resolves.toBeUndefined();
  });

  it('surfaces a batch over maxConcurrent as GeminiCallError 429, nothing created', async () => {
    // Arrange
    standIn.configure({ batch: { pendingMs: 5_000, maxConcurrent: 2 } });
    const file = await uploadSmall('concurrency input', 1);
    await api.createBatch(MODEL, file.name, 'open 1');
    await api.createBatch(MODEL, file.name, 'open 2');
    // Act
    const error = await rejection(() => api.createBatch(MODEL, file.name, 'one too many'));
    // Assert
    expect(error.httpStatus).toBe(429);
    expect(error.body).toMatchObject({ error: { code: 429, status: 'RESOURCE_EXHAUSTED' } });
    const names: string[] = [];
    for await (const batch of api.listBatches()) names.push(batch.displayName ?? '');
    expect(names).not.toContain('one too many');
  });

  it('surfaces a batch over the enqueued-token cap as 429 until the open batch ends', async () => {
    // Arrange: 10 lines of 25 tokens; 250 fit under 400, 500 do not.
    standIn.configure({ batch: { pendingMs: 5_000, enqueuedTokenLimit: { [MODEL]: 400 } } });
    const file = await uploadSmall('tokens input', 10);
    const first = await api.createBatch(MODEL, file.name, 'tokens 1');
    // Act
    const error = await rejection(() => api.createBatch(MODEL, file.name, 'tokens 2'));
    const otherModel = await api.createBatch('gemini-2.5-pro', file.name, 'tokens other model');
    await api.cancelBatch(first.name);
    const second = await api.createBatch(MODEL, file.name, 'tokens 2');
    // Assert
    expect(error.httpStatus).toBe(429);
    expect(otherModel.state).toBe('PENDING');
    expect(second.state).toBe('PENDING');
  });

  it.each([
    ['never reaches the server', 'before', 'upload'],
    ['is cut off mid-body', 'cut', 'upload'],
    ['reaches the server but its answer is lost', 'after', 'upload'],
    ['is the final one and its answer is lost', 'after', 'upload, finalize'],
  ] as const)('resumes via query when a chunk %s, byte-identical', async (_what, how, command) => {
    // Arrange
    const sent: Sent[] = [];
    const offset = command === 'upload' ? GRANULARITY : undefined;
    const client = createBatchApi({
      apiKey: 'local',
      baseUrl: standIn.url,
      fetch: flakyFetch(sent, { command, how, ...(offset !== undefined ? { offset } : {}) }),
    });
    const expected = await sha256Of(jsonl(2500));
    // Act
    const file = await client.uploadJsonl(jsonl(2500), { displayName: `resumed (${how} ${command})` });
    // Assert
    expect(sent.map((s) => s.command)).toContain('query');
    expect(sent.map((s) => s.command)).not.toContain('cancel');
    expect(await storedSha256(file.name)).toBe(expected);
    const offsets = sent.filter((s) => s.command === 'upload').map((s) => s.offset);
    expect(new Set(offsets).size).toBe(offsets.length - (how === 'after' ? 0 : 1));
  });

  it('gives up on a chunk that keeps failing, cancels the upload and throws', async () => {
    // Arrange
    const sent: Sent[] = [];
    const client = createBatchApi({
      apiKey: 'local',
      baseUrl: standIn.url,
      fetch: flakyFetch(sent, { command: 'upload', offset: GRANULARITY, how: 'before', always: true }),
    });
    const filesBefore = standIn.stats().files.count;
    // Act
    const error = await rejection(() => client.uploadJsonl(jsonl(2500), { displayName: 'doomed' }));
    // Assert
    expect(error.httpStatus).toBeUndefined();
    expect(sent.filter((s) => s.command === 'upload' && s.offset === GRANULARITY).length).toBe(5);
    expect(sent.at(-1)?.command).toBe('cancel');
    expect(standIn.stats().files.count).toBe(filesBefore);
  });

  describe('under the strict profile', () => {
    beforeEach(() => {
      standIn.configure({ profile: 'strict', batch: { pendingMs: 50, runningMs: 150, progressive: false } });
    });
    afterEach(() => {
      standIn.configure({ profile: 'ideal' });
    });

    /** The lines' bytes: what a caller declares as the upload's size. */
    async function sizeOf(source: AsyncIterable<Uint8Array | string>): Promise<number> {
      let n = 0;
      for await (const piece of source)
        n += typeof piece === 'string' ? Buffer.byteLength(piece) : piece.length;
      return n;
    }

    it('is taken with its size and the jsonl type, and reads the gzipped responses file whole', async () => {
      // Act
      const file = await api.uploadJsonl(jsonl(1500), {
        displayName: 'strict input',
        sizeBytes: await sizeOf(jsonl(1500)),
      });
      const created = await api.createBatch(MODEL, file.name, 'strict run');
      const { done } = await waitUntilDone(created.name);
      const keys = new Set<string>();
      for await (const text of api.responseLines(done.responsesFile ?? ''))
        keys.add((JSON.parse(text) as { key: string }).key);
      // Assert
      expect(done.state).toBe('SUCCEEDED');
      expect(keys.size).toBe(1500);
    });

    it('without a size is refused at upload start', async () => {
      // Act
      const error = await rejection(() => api.uploadJsonl(jsonl(10), { displayName: 'no size' }));
      // Assert
      expect(error.httpStatus).toBe(400);
    });

    it('answered 200 without a file is an UploadAnswerError', async () => {
      // Arrange
      const marked = () => jsonl(5, () => 'x [[fault:upload-no-file]]');
      // Act
      const error = await rejection(async () =>
        api.uploadJsonl(marked(), { displayName: 'no file', sizeBytes: await sizeOf(marked()) }),
      );
      // Assert
      expect(error).toBeInstanceOf(UploadAnswerError);
    });
  });
});
