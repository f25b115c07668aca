import { describe, expect, it } from 'vitest';
import {
  createBatchApi,
  parseBatchResource,
  parseBatchState,
} from '../../../../functions/platform/gemini/batch-api.js';
import { GeminiCallError } from '../../../../functions/platform/gemini/client.js';

/** A fetch that answers every call with `answer()` and records what was asked. */
function fakeFetch(answer: () => Response) {
  const calls: Array<{ url: string; method: string; key: string | null }> = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    calls.push({ url: String(input), method: init?.method ?? 'GET', key: headers.get('x-goog-api-key') });
    return answer();
  };
  return { fetch, calls };
}

/** A body that arrives in exactly these pieces. */
function pieces(...parts: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
}

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

describe('parseBatchState', () => {
  it.each([
    ['BATCH_STATE_PENDING', 'PENDING'],
    ['JOB_STATE_PENDING', 'PENDING'],
    ['BATCH_STATE_RUNNING', 'RUNNING'],
    ['JOB_STATE_RUNNING', 'RUNNING'],
    ['BATCH_STATE_SUCCEEDED', 'SUCCEEDED'],
    ['JOB_STATE_SUCCEEDED', 'SUCCEEDED'],
    ['BATCH_STATE_FAILED', 'FAILED'],
    ['JOB_STATE_FAILED', 'FAILED'],
    ['BATCH_STATE_CANCELLED', 'CANCELLED'],
    ['JOB_STATE_CANCELLED', 'CANCELLED'],
    ['BATCH_STATE_EXPIRED', 'EXPIRED'],
    ['JOB_STATE_EXPIRED', 'EXPIRED'],
    ['SUCCEEDED', 'SUCCEEDED'],
  ])('reads %s as %s', (raw, state) => {
    expect(parseBatchState(raw)).toBe(state);
  });

  it.each(['BATCH_STATE_UNSPECIFIED', 'JOB_STATE_QUEUED', 'succeeded', ''])('refuses %j', (raw) => {
    expect(() => parseBatchState(raw)).toThrow(/Unknown batch state/);
  });
});

describe('parseBatchResource', () => {
  it('reads the Operation: int64 counts, zero counts left out, output file and error', () => {
    // Arrange
    const operation = {
      name: 'batches/abc123',
      metadata: {
        '@type': 'type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch',
        displayName: 'job-1',
        state: 'BATCH_STATE_SUCCEEDED',
        createTime: '2030-01-01T00:00:00Z',
        batchStats: { requestCount: '12', successfulRequestCount: '10', failedRequestCount: '2' },
        output: { responsesFile: 'files/batch-abc123' },
      },
      done: true,
    };
    // Act
    const info = parseBatchResource(operation);
    // Assert
    expect(info).toEqual({
      name: 'batches/abc123',
      displayName: 'job-1',
      state: 'SUCCEEDED',
      stats: { requestCount: 12, successfulRequestCount: 10, failedRequestCount: 2, pendingRequestCount: 0 },
      responsesFile: 'files/batch-abc123',
      createTime: '2030-01-01T00:00:00Z',
    });
  });

  it('reads a failed batch without stats as zero counts with its error', () => {
    // Act
    const info = parseBatchResource({
      name: 'batches/x',
      metadata: { state: 'JOB_STATE_FAILED' },
      error: { code: 13, message: 'Batch failed' },
    });
    // Assert
    expect(info.state).toBe('FAILED');
    expect(info.stats.requestCount).toBe(0);
    expect(info.error).toEqual({ code: 13, message: 'Batch failed' });
  });

  it('refuses a resource it cannot read with a GeminiCallError carrying the body', () => {
    // Arrange
    const body = { name: 'batches/x', metadata: { state: 'BATCH_STATE_PAUSED' } };
    // Act
    const act = () => parseBatchResource(body);
    // Assert
    expect(act).toThrow(GeminiCallError);
    expect(act).toThrow(/unknown batch state BATCH_STATE_PAUSED/);
  });
});

describe('createBatchApi: responseLines', () => {
  it('streams lines across piece boundaries: CRLF, split characters, blank lines, no final newline', async () => {
    // Arrange: "é" (c3 a9) and "\r\n" are each cut between two pieces.
    const text = Buffer.from('{"key":"a","v":"é"}\r\n\n  \n{"key":"b"}\r\n{"key":"c"}');
    const cutChar = text.indexOf(0xa9);
    const cutCrlf = text.indexOf('\n');
    const body = pieces(text.subarray(0, cutChar), text.subarray(cutChar, cutCrlf), text.subarray(cutCrlf));
    const { fetch, calls } = fakeFetch(() => new Response(body));
    const api = createBatchApi({ apiKey: 'secret', baseUrl: 'http://gemini.test/', fetch });
    // Act
    const lines = await collect(api.responseLines('files/batch-1'));
    // Assert
    expect(lines).toEqual(['{"key":"a","v":"é"}', '{"key":"b"}', '{"key":"c"}']);
    expect(calls).toEqual([
      {
        url: 'http://gemini.test/download/v1beta/files/batch-1:download?alt=media',
        method: 'GET',
        key: 'secret',
      },
    ]);
  });

  it('throws GeminiCallError with the status and JSON body of a refused download', async () => {
    // Arrange
    const body = { error: { code: 429, message: 'slow down', status: 'RESOURCE_EXHAUSTED' } };
    const { fetch } = fakeFetch(() => Response.json(body, { status: 429 }));
    const api = createBatchApi({ apiKey: 'k', baseUrl: 'http://gemini.test', fetch });
    // Act
    const error = await collect(api.responseLines('files/x')).catch((e: unknown) => e);
    // Assert
    expect(error).toBeInstanceOf(GeminiCallError);
    expect(error).toMatchObject({ httpStatus: 429, body });
  });
});

describe('createBatchApi: responseLines of a packed body', () => {
  /** A body that yields `pieces`, then fails as a cut-off gzip stream does in fetch's decoder. */
  function cutOff(...parts: Uint8Array[]): ReadableStream<Uint8Array> {
    let at = 0;
    return new ReadableStream({
      pull(controller) {
        if (at < parts.length) controller.enqueue(parts[at++]!);
        else controller.error(new TypeError('terminated: unexpected end of file'));
      },
    });
  }

  it('throws when a gzipped body is cut off, though more unpacked bytes came than its content-length', async () => {
    // Arrange: 40 packed bytes announced; 60 unpacked bytes arrive, then the decoder fails.
    const unpacked = Buffer.from(`${'{"key":"a","v":"aaaaaaaa"}\n'.repeat(2)}{"key":"b"`);
    const { fetch } = fakeFetch(
      () =>
        new Response(cutOff(unpacked), {
          headers: { 'content-encoding': 'gzip', 'content-length': '40' },
        }),
    );
    const api = createBatchApi({ apiKey: 'k', baseUrl: 'http://gemini.test', fetch });
    // Act
    const error = await collect(api.responseLines('files/batch-1')).catch((e: unknown) => e);
    // Assert
    expect(unpacked.length).toBeGreaterThan(40);
    expect(error).toBeInstanceOf(GeminiCallError);
  });

  it('still ends an unencoded body quietly when the connection closes after every announced byte', async () => {
    // Arrange
    const body = Buffer.from('{"key":"a"}\n{"key":"b"}\n');
    const { fetch } = fakeFetch(
      () => new Response(cutOff(body), { headers: { 'content-length': String(body.length) } }),
    );
    const api = createBatchApi({ apiKey: 'k', baseUrl: 'http://gemini.test', fetch });
    // Act
    const lines = await collect(api.responseLines('files/batch-1'));
    // Assert
    expect(lines).toEqual(['{"key":"a"}', '{"key":"b"}']);
  });
});

describe('createBatchApi: uploadJsonl', () => {
  it("declares the size and the Batch guide's type, jsonl, at upload start", async () => {
    // Arrange
    const starts: Headers[] = [];
    const fetch: typeof globalThis.fetch = async (_input, init) => {
      const headers = new Headers(init?.headers);
      if (headers.get('x-goog-upload-command') === 'start') {
        starts.push(headers);
        return new Response(null, { headers: { 'x-goog-upload-url': 'http://gemini.test/up/1' } });
      }
      if (init?.body) await new Response(init.body as ReadableStream).arrayBuffer();
      return Response.json({ file: { name: 'files/in', sizeBytes: '12' } });
    };
    const api = createBatchApi({ apiKey: 'k', baseUrl: 'http://gemini.test', fetch });
    // Act
    const file = await api.uploadJsonl(
      (async function* () {
        yield '{"key":"a"}\n';
      })(),
      { displayName: 'part', sizeBytes: 12 },
    );
    // Assert
    expect(file).toEqual({ name: 'files/in', sizeBytes: 12 });
    expect(starts[0]!.get('x-goog-upload-header-content-type')).toBe('jsonl');
    expect(starts[0]!.get('x-goog-upload-header-content-length')).toBe('12');
  });
});

describe('createBatchApi: deleteFile', () => {
  it('treats a file already gone (403 "may not exist", or 404) as deleted', async () => {
    // Arrange
    const gone = {
      error: {
        code: 403,
        status: 'PERMISSION_DENIED',
        message: 'You do not have permission to access the File abc or it may not exist.',
      },
    };
    const { fetch, calls } = fakeFetch(() => Response.json(gone, { status: 403 }));
    const api = createBatchApi({ apiKey: 'k', baseUrl: 'http://gemini.test', fetch });
    // Act
    await api.deleteFile('files/abc');
    // Assert
    expect(calls).toMatchObject([{ url: 'http://gemini.test/v1beta/files/abc', method: 'DELETE' }]);
  });

  it('throws any other refusal', async () => {
    // Arrange
    const denied = { error: { code: 403, status: 'PERMISSION_DENIED', message: 'API key not valid.' } };
    const { fetch } = fakeFetch(() => Response.json(denied, { status: 403 }));
    const api = createBatchApi({ apiKey: 'k', baseUrl: 'http://gemini.test', fetch });
    // Act
    const error = await api.deleteFile('files/abc').catch((e: unknown) => e);
    // Assert
    expect(error).toMatchObject({ httpStatus: 403, body: denied });
  });
});
