import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createPartFromBase64, createPartFromUri, GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { expectApiError } from '../fixtures/gemini/api-error.js';

const MODEL = 'gemini-2.5-flash-lite';
const T0 = Date.parse('2030-05-01T12:00:00Z');

describe('Gemini stand-in, strict profile: request size, file states, expiry, downloads (official SDK, fake clock)', () => {
  let standIn: GeminiStandIn;
  let ai: GoogleGenAI;
  let work: string;
  let now = T0;

  beforeAll(async () => {
    standIn = await startGeminiStandIn({ profile: 'strict', clock: () => now });
    ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: standIn.url } });
    work = await mkdtemp(join(tmpdir(), 'gemini-strict-files-'));
  });
  afterAll(async () => {
    await standIn.close();
    await rm(work, { recursive: true, force: true });
  });
  beforeEach(() => {
    now = T0;
    standIn.configure({ profile: 'strict' });
  });

  const image = (bytes: number) => new Blob([Buffer.alloc(bytes, 1)], { type: 'image/png' });

  it('refuses a body over the request limit, counting the encoded (base64) bytes, with 400 INVALID_ARGUMENT', async () => {
    // Arrange: 50,000 bytes of image are 66,668 in base64, over a 64 KiB limit.
    standIn.configure({ limits: { maxRequestBytes: 64 * 1024 } });
    const part = (bytes: number) =>
      createPartFromBase64(Buffer.alloc(bytes, 1).toString('base64'), 'image/png');
    // Act
    const small = await ai.models.generateContent({ model: MODEL, contents: [part(40_000), 'what is it?'] });
    const big = await expectApiError(() =>
      ai.models.generateContent({ model: MODEL, contents: [part(50_000), 'what is it?'] }),
    );
    const count = await expectApiError(() =>
      ai.models.countTokens({ model: MODEL, contents: [part(50_000)] }),
    );
    // Assert
    expect(small.text).toMatch(/\[media:1\]/);
    expect(big).toMatchObject({
      status: 400,
      rpcStatus: 'INVALID_ARGUMENT',
      message: 'Request payload size exceeds the limit: 65536 bytes.',
    });
    expect(count.status).toBe(400);
    expect(standIn.stats().models[MODEL]?.requests).toBe(1);
  });

  it('keeps the documented limits by default: 100 MiB a request, 20 MiB a batch creation', () => {
    // Assert
    expect(standIn.config().limits).toEqual({
      maxRequestBytes: 100 * 1024 * 1024,
      maxBatchRequestBytes: 20 * 1024 * 1024,
    });
  });

  it('keeps an uploaded medium PROCESSING for processingMs: generateContent with it is 400 FAILED_PRECONDITION until ACTIVE', async () => {
    // Arrange
    standIn.configure({ files: { processingMs: 5000 } });
    const file = await ai.files.upload({ file: image(2000), config: { mimeType: 'image/png' } });
    const ask = () =>
      ai.models.generateContent({
        model: MODEL,
        contents: [createPartFromUri(file.uri ?? '', 'image/png'), 'what?'],
      });
    // Act
    const early = await expectApiError(ask);
    now += 4999;
    const stillProcessing = await ai.files.get({ name: file.name ?? '' });
    now += 1;
    const active = await ai.files.get({ name: file.name ?? '' });
    const answer = await ask();
    // Assert
    expect(file.state).toBe('PROCESSING');
    expect(early).toMatchObject({
      status: 400,
      rpcStatus: 'FAILED_PRECONDITION',
      message: `The File ${file.name?.split('/')[1]} is not in an ACTIVE state and usage is not allowed.`,
    });
    expect(stillProcessing.state).toBe('PROCESSING');
    expect(active.state).toBe('ACTIVE');
    expect(answer.text).toMatch(/\[media:1\]/);
  });

  it('makes JSONL and text files ACTIVE at once (only media are processed)', async () => {
    // Act
    const jsonl = await ai.files.upload({
      file: new Blob(['{"key":"a"}\n'], { type: 'application/jsonl' }),
      config: { mimeType: 'jsonl' },
    });
    // Assert
    expect(jsonl.state).toBe('ACTIVE');
  });

  it('deletes files ttlMs after their creation: then 403 like any unknown file, and gone from the list', async () => {
    // Arrange
    standIn.configure({ files: { ttlMs: 60_000 } });
    const file = await ai.files.upload({
      file: new Blob(['hello'], { type: 'text/plain' }),
      config: { mimeType: 'text/plain' },
    });
    // Act
    now += 59_999;
    const alive = await ai.files.get({ name: file.name ?? '' });
    now += 1;
    const gone = await expectApiError(() => ai.files.get({ name: file.name ?? '' }));
    const listed: string[] = [];
    for await (const f of await ai.files.list({ config: { pageSize: 100 } })) listed.push(f.name ?? '');
    // Assert
    expect(Date.parse(file.expirationTime ?? '') - Date.parse(file.createTime ?? '')).toBe(60_000);
    expect(alive.name).toBe(file.name);
    expect(gone).toMatchObject({ status: 403, rpcStatus: 'PERMISSION_DENIED' });
    expect(listed).not.toContain(file.name);
  });

  it('refuses to download an uploaded file (no downloadUri), as upstream only serves generated ones', async () => {
    // Arrange
    const file = await ai.files.upload({
      file: new Blob(['secret'], { type: 'text/plain' }),
      config: { mimeType: 'text/plain' },
    });
    // Act
    const refused = await expectApiError(() =>
      ai.files.download({ file: file.name ?? '', downloadPath: join(work, 'uploaded.txt') }),
    );
    // Assert
    expect(file.downloadUri).toBeUndefined();
    expect(file.source).toBe('UPLOADED');
    expect(refused).toMatchObject({ status: 400, rpcStatus: 'INVALID_ARGUMENT' });
  });

  /** An upload start with the raw protocol; `headers` add to (or, set to undefined, drop) the SDK's. */
  function rawStart(headers: Record<string, string | undefined>): Promise<Response> {
    const all: Record<string, string | undefined> = {
      'x-goog-api-key': 'local',
      'content-type': 'application/json',
      'x-goog-upload-protocol': 'resumable',
      'x-goog-upload-command': 'start',
      'x-goog-upload-header-content-length': '12',
      'x-goog-upload-header-content-type': 'jsonl',
      ...headers,
    };
    const sent = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as Record<
      string,
      string
    >;
    return fetch(`${standIn.url}/upload/v1beta/files`, {
      method: 'POST',
      headers: sent,
      body: JSON.stringify({ file: { displayName: 'raw' } }),
    });
  }

  /** A GET read off the wire: status, headers and the bytes as sent (no decoding). */
  function rawGet(url: string, headers: Record<string, string>) {
    return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>(
      (resolve, reject) => {
        const req = request(url, { headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      },
    );
  }

  it('refuses an upload start that declares no size, as the SDK and the Files API guide always send one', async () => {
    // Act
    const without = await rawStart({ 'x-goog-upload-header-content-length': undefined });
    const withSize = await rawStart({});
    // Assert
    expect(without.status).toBe(400);
    expect(await without.json()).toMatchObject({
      error: { status: 'INVALID_ARGUMENT', message: expect.stringMatching(/declare its size/) },
    });
    expect(withSize.status).toBe(200);
    expect(withSize.headers.get('x-goog-upload-url')).toBeTruthy();
  });

  it.each(['application/jsonl', 'application/x-ndjson', 'application/octet-stream'])(
    'refuses the type %s, which the docs do not use, with 400 "Unsupported MIME type"',
    async (type) => {
      // Act
      const refused = await expectApiError(() =>
        ai.files.upload({ file: new Blob(['{"key":"a"}\n']), config: { mimeType: type } }),
      );
      // Assert
      expect(refused).toMatchObject({
        status: 400,
        rpcStatus: 'INVALID_ARGUMENT',
        message: `Unsupported MIME type: ${type}`,
      });
    },
  );

  it("takes the Batch guide's jsonl, and the documented media and document types", async () => {
    // Act
    const types = ['jsonl', 'image/png', 'application/pdf', 'text/plain', 'video/mp4', 'audio/wav'];
    const uploaded = await Promise.all(
      types.map((mimeType) => ai.files.upload({ file: new Blob(['x']), config: { mimeType } })),
    );
    // Assert
    expect(uploaded.map((f) => f.mimeType)).toEqual(types);
  });

  it('answers a final chunk 200 without a file when the upload carries [[fault:upload-no-file]], as upstream has', async () => {
    // Arrange
    const body = '{"key":"a","prompt":"[[fault:upload-no-file]]"}\n';
    const start = await rawStart({ 'x-goog-upload-header-content-length': String(Buffer.byteLength(body)) });
    // Act
    const final = await fetch(start.headers.get('x-goog-upload-url') ?? '', {
      method: 'POST',
      headers: {
        'x-goog-api-key': 'local',
        'x-goog-upload-command': 'upload, finalize',
        'x-goog-upload-offset': '0',
      },
      body,
    });
    // Assert
    expect(final.status).toBe(200);
    expect(final.headers.get('x-goog-upload-status')).toBe('final');
    expect(await final.json()).toEqual({});
  });

  it('sends a download gzipped to a client that accepts it: content-length is the packed size', async () => {
    // Arrange: an uploaded file, made downloadable for the test (strict serves only generated ones).
    standIn.configure({ files: { downloadUploaded: true } });
    const text = `${'{"key":"k","response":{"text":"the same words again"}}\n'.repeat(500)}`;
    const file = await ai.files.upload({ file: new Blob([text]), config: { mimeType: 'jsonl' } });
    const url = `${standIn.url}/download/v1beta/${file.name}:download?alt=media`;
    // Act
    const packed = await rawGet(url, { 'x-goog-api-key': 'local', 'accept-encoding': 'gzip' });
    const plain = await rawGet(url, { 'x-goog-api-key': 'local' });
    // Assert
    expect(packed.headers['content-encoding']).toBe('gzip');
    expect(Number(packed.headers['content-length'])).toBe(packed.body.length);
    expect(packed.body.length).toBeLessThan(Buffer.byteLength(text) / 10);
    expect(gunzipSync(packed.body).toString()).toBe(text);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toBe(text);
  });

  it('expires a batch input file 48 h of simulated time after its upload: a batch from it is then refused', async () => {
    // Arrange
    const line = JSON.stringify({
      key: 'a',
      request: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
    });
    const file = await ai.files.upload({ file: new Blob([`${line}\n`]), config: { mimeType: 'jsonl' } });
    // Act
    now += 48 * 3_600_000;
    const refused = await expectApiError(() =>
      ai.batches.create({ model: MODEL, src: file.name ?? '', config: { displayName: 'too late' } }),
    );
    // Assert
    expect(Date.parse(file.expirationTime ?? '') - Date.parse(file.createTime ?? '')).toBe(48 * 3_600_000);
    expect(refused).toMatchObject({
      status: 403,
      rpcStatus: 'PERMISSION_DENIED',
      message: expect.stringMatching(/may not exist/),
    });
  });
});
