import { describe, expect, it } from 'vitest';
import { createMediaUploader } from '../../../../functions/platform/media/upload.js';

/**
 * A Files API over fetch: the resumable upload (start, upload chunks, finalize) and files.get, which
 * answers PROCESSING `processingReads` times before ACTIVE. The upload requests numbered in
 * `failUploads` (from 0) answer 503 and keep nothing; a query answers `queryStatus` (active by
 * default) and the bytes held. It records each request's command and body size, and the bytes the
 * upload ended with.
 */
function fakeFilesApi(options: {
  granularity: number;
  processingReads?: number;
  finalState?: string;
  failUploads?: number[];
  queryStatus?: string;
}) {
  const requests: Array<{ command: string | null; bytes: number }> = [];
  let stored = Buffer.alloc(0);
  let reads = 0;
  let uploads = 0;
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = new URL(String(input));
    const headers = new Headers(init?.headers);
    const command = headers.get('x-goog-upload-command');
    const body = init?.body
      ? Buffer.from(await new Response(init.body as ReadableStream).arrayBuffer())
      : Buffer.alloc(0);
    requests.push({ command, bytes: body.length });
    if (url.pathname === '/upload/v1beta/files') {
      return new Response(null, {
        headers: {
          'x-goog-upload-url': 'https://files.test/upload/session-1',
          'x-goog-upload-chunk-granularity': String(options.granularity),
        },
      });
    }
    if (url.pathname === '/upload/session-1' && command === 'query') {
      const status = options.queryStatus ?? 'active';
      return new Response(null, {
        headers: { 'x-goog-upload-status': status, 'x-goog-upload-size-received': String(stored.length) },
      });
    }
    if (url.pathname === '/upload/session-1' && command?.startsWith('upload')) {
      if (options.failUploads?.includes(uploads++)) return new Response('busy', { status: 503 });
    }
    if (url.pathname === '/upload/session-1') {
      stored = Buffer.concat([stored, body]);
      if (command?.includes('finalize')) {
        return Response.json({ file: { name: 'files/abc', sizeBytes: String(stored.length) } });
      }
      return new Response(null);
    }
    if (url.pathname === '/v1beta/files/abc') {
      reads++;
      const state = reads <= (options.processingReads ?? 0) ? 'PROCESSING' : (options.finalState ?? 'ACTIVE');
      return Response.json({
        name: 'files/abc',
        uri: 'https://files.test/v1beta/files/abc',
        mimeType: 'video/mp4',
        state,
      });
    }
    return Response.json({ error: { code: 404 } }, { status: 404 });
  };
  return { fetch, requests, stored: () => stored };
}

/** `total` bytes in pieces of `size`, each piece filled with its own byte. */
function* pieces_(total: number, size: number): Generator<Buffer> {
  for (let at = 0; at < total; at += size) yield Buffer.alloc(Math.min(size, total - at), at % 251);
}

/** An uploader against the fake Files API. */
function uploaderOver(api: ReturnType<typeof fakeFilesApi>, options: { pollMs?: number } = {}) {
  return createMediaUploader({
    apiKey: 'k',
    baseUrl: 'https://files.test',
    timeoutMs: 5000,
    fetch: api.fetch,
    ...options,
  });
}

async function* pieces(total: number, size: number): AsyncGenerator<Uint8Array> {
  yield* pieces_(total, size);
}

describe('createMediaUploader', () => {
  it('streams the medium in chunks of the announced granularity and waits until it is ACTIVE', async () => {
    const api = fakeFilesApi({ granularity: 1024, processingReads: 2 });
    const uploader = uploaderOver(api, { pollMs: 1 });

    const file = await uploader.upload(pieces(3000, 700), { mimeType: 'video/mp4' });

    expect(file).toEqual({ uri: 'https://files.test/v1beta/files/abc', mimeType: 'video/mp4' });
    expect(api.stored().length).toBe(3000);
    expect(api.requests.map((r) => [r.command, r.bytes])).toEqual([
      ['start', expect.any(Number)],
      ['upload', 1024],
      ['upload', 1024],
      ['upload, finalize', 952],
      [null, 0],
      [null, 0],
      [null, 0],
    ]);
  });

  it('asks where the session stands after a failed chunk and sends it again from there', async () => {
    const api = fakeFilesApi({ granularity: 1024, failUploads: [1] });
    const uploader = uploaderOver(api);

    await uploader.upload(pieces(3000, 700), { mimeType: 'video/mp4' });

    expect(api.stored()).toEqual(Buffer.concat(Array.from(pieces_(3000, 700))));
    expect(api.requests.map((r) => r.command).slice(0, 6)).toEqual([
      'start',
      'upload',
      'upload',
      'query',
      'upload',
      'upload, finalize',
    ]);
  });

  it('cancels the upload without more tries when the session cannot take the chunk again', async () => {
    const api = fakeFilesApi({ granularity: 1024, failUploads: [1], queryStatus: 'cancelled' });
    const uploader = uploaderOver(api);

    await expect(uploader.upload(pieces(3000, 700), { mimeType: 'video/mp4' })).rejects.toThrow(
      /cannot help/,
    );
    expect(api.requests.map((r) => r.command)).toEqual(['start', 'upload', 'upload', 'query', 'cancel']);
  });

  it('gives up when its signal aborts while the file is PROCESSING', async () => {
    const api = fakeFilesApi({ granularity: 1024, processingReads: 1_000_000 });
    const uploader = uploaderOver(api, { pollMs: 5 });

    const err = await uploader
      .upload(pieces(100, 100), { mimeType: 'video/mp4', signal: AbortSignal.timeout(50) })
      .catch((e: unknown) => e);

    expect((err as Error).name).toBe('TimeoutError');
  });

  it('reports a file that ends FAILED', async () => {
    const api = fakeFilesApi({ granularity: 1024, finalState: 'FAILED' });
    const uploader = uploaderOver(api);

    await expect(uploader.upload(pieces(100, 100), { mimeType: 'video/mp4' })).rejects.toThrow(/is FAILED/);
  });
});
