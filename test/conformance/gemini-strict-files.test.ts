import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
      config: { mimeType: 'application/jsonl' },
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
});
