import { describe, expect, it } from 'vitest';
import { GeminiCallError } from '../../../../functions/platform/gemini/client.js';
import { UploadAnswerError, uploadResumable } from '../../../../functions/platform/gemini/files-upload.js';
import type { RestTransport } from '../../../../functions/platform/gemini/rest.js';

/**
 * A Files API upload endpoint over fetch: it records every request's headers and command, keeps
 * the bytes, and answers the finalize with `finalBody` (by default the file it stored).
 */
function fakeUploads(finalBody?: unknown) {
  const requests: Array<{ command: string | null; headers: Headers }> = [];
  let stored = 0;
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = new URL(String(input));
    const headers = new Headers(init?.headers);
    const command = headers.get('x-goog-upload-command');
    requests.push({ command, headers });
    const body = init?.body
      ? await new Response(init.body as ReadableStream).arrayBuffer()
      : new ArrayBuffer(0);
    if (url.pathname === '/upload/v1beta/files') {
      return new Response(null, {
        headers: {
          'x-goog-upload-url': 'https://files.test/upload/s1',
          'x-goog-upload-chunk-granularity': '4',
        },
      });
    }
    stored += body.byteLength;
    if (command?.includes('finalize')) {
      return Response.json(finalBody ?? { file: { name: 'files/f1', sizeBytes: String(stored) } });
    }
    return new Response(null);
  };
  const t: RestTransport = { baseUrl: 'https://files.test', apiKey: 'k', timeoutMs: 5000, fetch };
  return { t, requests, commands: () => requests.map((r) => r.command) };
}

async function* text(...pieces: string[]): AsyncGenerator<string> {
  yield* pieces;
}

describe('uploadResumable: the start declares what the SDK declares', () => {
  it('sends X-Goog-Upload-Header-Content-Length and -Content-Type when the size is known', async () => {
    // Arrange
    const api = fakeUploads();
    // Act
    const file = await uploadResumable(api.t, text('0123456789'), {
      displayName: 'd',
      mimeType: 'jsonl',
      sizeBytes: 10,
    });
    // Assert
    const start = api.requests[0]!.headers;
    expect(start.get('x-goog-upload-command')).toBe('start');
    expect(start.get('x-goog-upload-protocol')).toBe('resumable');
    expect(start.get('x-goog-upload-header-content-length')).toBe('10');
    expect(start.get('x-goog-upload-header-content-type')).toBe('jsonl');
    expect(file).toEqual({ name: 'files/f1', sizeBytes: 10 });
  });

  it('declares no length when the size is truly unknown', async () => {
    // Arrange
    const api = fakeUploads();
    // Act
    await uploadResumable(api.t, text('abc'), { displayName: 'd', mimeType: 'video/mp4' });
    // Assert
    expect(api.requests[0]!.headers.has('x-goog-upload-header-content-length')).toBe(false);
  });

  it.each([
    ['more', ['0123', '4567', '89']],
    ['fewer', ['0123', '45']],
  ])(
    'refuses a source holding %s bytes than declared before finalizing, and cancels the upload',
    async (_, pieces) => {
      // Arrange
      const api = fakeUploads();
      // Act
      const error = await uploadResumable(api.t, text(...pieces), {
        displayName: 'd',
        mimeType: 'jsonl',
        sizeBytes: 8,
      }).catch((e: unknown) => e);
      // Assert
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/declared 8 bytes/);
      expect(api.commands()).not.toContain('upload, finalize');
      expect(api.commands().at(-1)).toBe('cancel');
    },
  );
});

describe('uploadResumable: a final answer without a file', () => {
  it('is an UploadAnswerError, sent once (the caller bounds whole-file retries)', async () => {
    // Arrange: upstream has answered a finalize 200 with no file (python-genai #1248, #1590).
    const api = fakeUploads({});
    // Act
    const error = await uploadResumable(api.t, text('abcd', 'ef'), {
      displayName: 'd',
      mimeType: 'jsonl',
      sizeBytes: 6,
    }).catch((e: unknown) => e);
    // Assert
    expect(error).toBeInstanceOf(UploadAnswerError);
    expect((error as Error).message).toMatch(/names no file/);
    expect(api.commands().filter((c) => c === 'upload, finalize')).toHaveLength(1);
  });

  it('with an error body of a refusal (4xx) is that refusal, with its status', async () => {
    // Arrange: python-genai #1547 saw {"error": {"code": 400, "message": "Unsupported MIME type: jsonl"}}.
    const api = fakeUploads({
      error: { code: 400, message: 'Unsupported MIME type: jsonl', status: 'INVALID_ARGUMENT' },
    });
    // Act
    const error = await uploadResumable(api.t, text('ab'), {
      displayName: 'd',
      mimeType: 'jsonl',
      sizeBytes: 2,
    }).catch((e: unknown) => e);
    // Assert
    expect(error).toBeInstanceOf(GeminiCallError);
    expect(error).not.toBeInstanceOf(UploadAnswerError);
    expect((error as GeminiCallError).httpStatus).toBe(400);
    expect((error as Error).message).toMatch(/Unsupported MIME type/);
  });

  it('with an error body of a server fault (5xx) is an UploadAnswerError', async () => {
    // Arrange
    const api = fakeUploads({ error: { code: 503, message: 'busy' } });
    // Act
    const error = await uploadResumable(api.t, text('ab'), {
      displayName: 'd',
      mimeType: 'jsonl',
      sizeBytes: 2,
    }).catch((e: unknown) => e);
    // Assert
    expect(error).toBeInstanceOf(UploadAnswerError);
  });
});
