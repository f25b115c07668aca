import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createPartFromUri, GoogleGenAI } from '@google/genai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../infra/local/gemini/config.js';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { expectApiError } from '../fixtures/gemini/api-error.js';

const MODEL = 'gemini-2.5-flash';

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Writes `bytes` pseudo-random bytes to `path` in 1 MiB pieces (never the whole file in memory). */
async function writeRandomFile(path: string, bytes: number): Promise<void> {
  async function* pieces() {
    for (let left = bytes; left > 0; left -= 1024 * 1024) yield randomBytes(Math.min(left, 1024 * 1024));
  }
  await pipeline(pieces, createWriteStream(path));
}

describe('Gemini stand-in: Files API (official SDK)', () => {
  let standIn: GeminiStandIn;
  let ai: GoogleGenAI;
  let work: string;

  beforeAll(async () => {
    standIn = await startGeminiStandIn();
    ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: standIn.url } });
    work = await mkdtemp(join(tmpdir(), 'gemini-files-test-'));
  });
  afterAll(async () => {
    await standIn.close();
    await rm(work, { recursive: true, force: true });
  });
  afterEach(() => {
    // Tests that tighten the Files API limits leave the defaults behind them.
    standIn.configure({ files: parseConfig({}).files });
  });

  /**
   * Opens an upload with the raw protocol, declaring no size (like a streamed upload) unless
   * `headers` do; the start answer comes back too.
   */
  async function rawStart(
    displayName: string,
    headers: Record<string, string> = {},
  ): Promise<{ url: string; granularity: string | null; start: Response }> {
    const start = await fetch(`${standIn.url}/upload/v1beta/files`, {
      method: 'POST',
      headers: {
        'x-goog-api-key': 'local',
        'content-type': 'application/json',
        'x-goog-upload-protocol': 'resumable',
        'x-goog-upload-command': 'start',
        'x-goog-upload-header-content-type': 'application/jsonl',
        ...headers,
      },
      body: JSON.stringify({ file: { displayName } }),
    });
    return {
      url: start.headers.get('x-goog-upload-url') ?? '',
      granularity: start.headers.get('x-goog-upload-chunk-granularity'),
      start,
    };
  }

  /** One chunk; `stream` sends it without content-length (chunked), so its size shows only at its end. */
  function rawChunk(url: string, offset: number, command: string, body: string, stream = false) {
    return fetch(url, {
      method: 'POST',
      headers: {
        'x-goog-api-key': 'local',
        'x-goog-upload-command': command,
        'x-goog-upload-offset': String(offset),
      },
      body: stream ? new Blob([body]).stream() : body,
      ...(stream ? { duplex: 'half' } : {}),
    } as RequestInit);
  }

  it('uploads a 50 MB file with the resumable protocol and downloads it back byte-identical', async () => {
    // Arrange
    const source = join(work, 'big.bin');
    const target = join(work, 'big.out');
    await writeRandomFile(source, 50 * 1024 * 1024);
    const expected = await sha256OfFile(source);
    // Act
    const file = await ai.files.upload({
      file: source,
      config: { mimeType: 'application/octet-stream', displayName: 'fifty megabytes' },
    });
    await ai.files.download({ file: file.name ?? '', downloadPath: target });
    // Assert
    expect(file).toMatchObject({
      displayName: 'fifty megabytes',
      mimeType: 'application/octet-stream',
      sizeBytes: String(50 * 1024 * 1024),
      state: 'ACTIVE',
      source: 'UPLOADED',
      sha256Hash: Buffer.from(expected).toString('base64'),
    });
    expect(file.name).toMatch(/^files\/[a-z0-9]{12}$/);
    expect(Date.parse(file.expirationTime ?? '') - Date.parse(file.createTime ?? '')).toBe(48 * 3600 * 1000);
    expect((await stat(target)).size).toBe(50 * 1024 * 1024);
    expect(await sha256OfFile(target)).toBe(expected);
  });

  it('gets, lists page by page and deletes files; an unknown file is 403 as upstream', async () => {
    // Arrange
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      const blob = new Blob([`file ${i}`], { type: 'text/plain' });
      const file = await ai.files.upload({ file: blob, config: { displayName: `small-${i}` } });
      names.push(file.name ?? '');
    }
    // Act
    const got = await ai.files.get({ name: names[1] ?? '' });
    const firstPage = await ai.files.list({ config: { pageSize: 2 } });
    const listed: string[] = [];
    for await (const f of await ai.files.list({ config: { pageSize: 2 } })) listed.push(f.name ?? '');
    await ai.files.delete({ name: names[0] ?? '' });
    const deleted = await expectApiError(() => ai.files.get({ name: names[0] ?? '' }));
    const unknown = await expectApiError(() => ai.files.get({ name: 'files/doesnotexist' }));
    // Assert
    expect(got).toMatchObject({
      name: names[1],
      displayName: 'small-1',
      sizeBytes: '6',
      mimeType: 'text/plain',
    });
    expect(got.uri).toBe(`${standIn.url}/v1beta/${names[1]}`);
    expect(firstPage.page.length).toBe(2);
    expect(listed).toEqual(expect.arrayContaining(names));
    expect(deleted).toMatchObject({ status: 403, rpcStatus: 'PERMISSION_DENIED' });
    expect(unknown.message).toBe(
      'You do not have permission to access the File doesnotexist or it may not exist.',
    );
  });

  it('accepts a fileData part that points at an uploaded image and charges 258 tokens', async () => {
    // Arrange
    const image = await ai.files.upload({
      file: new Blob([randomBytes(2048)], { type: 'image/png' }),
      config: { displayName: 'picture' },
    });
    // Act
    const response = await ai.models.generateContent({
      model: MODEL,
      contents: [
        { role: 'user', parts: [{ text: 'Describe' }, createPartFromUri(image.uri ?? '', 'image/png')] },
      ],
    });
    const missing = await expectApiError(() =>
      ai.models.generateContent({
        model: MODEL,
        contents: [
          { role: 'user', parts: [createPartFromUri(`${standIn.url}/v1beta/files/gone123`, 'image/png')] },
        ],
      }),
    );
    // Assert
    expect(response.text).toMatch(/^echo: Describe \[media:1\] #/);
    expect(response.usageMetadata?.promptTokenCount).toBe(2 + 258);
    expect(missing.status).toBe(403);
  });

  it('answers a chunk at the wrong offset with 400 and the session status (raw upload protocol)', async () => {
    // Arrange
    standIn.configure({ files: { chunkGranularity: 5 } });
    const { url: uploadUrl, start } = await rawStart('offsets', {
      'x-goog-upload-header-content-length': '10',
      'x-goog-upload-header-content-type': 'text/plain',
    });
    const chunk = (offset: number, command: string, body: string) =>
      rawChunk(uploadUrl, offset, command, body);
    // Act
    const first = await chunk(0, 'upload', '01234');
    const wrong = await chunk(3, 'upload', '34567');
    const query = await fetch(uploadUrl, {
      method: 'POST',
      headers: { 'x-goog-upload-command': 'query', 'x-goog-api-key': 'local' },
    });
    const last = await chunk(5, 'upload, finalize', '56789');
    // Assert
    expect(start.status).toBe(200);
    expect(start.headers.get('x-goog-upload-status')).toBe('active');
    expect(uploadUrl).toMatch(/\/upload\/v1beta\/files\?upload_id=[a-z0-9]+&upload_protocol=resumable$/);
    expect(first.headers.get('x-goog-upload-status')).toBe('active');
    expect(wrong.status).toBe(400);
    expect(wrong.headers.get('x-goog-upload-status')).toBe('active');
    expect(wrong.headers.get('x-goog-upload-size-received')).toBe('5');
    expect(query.headers.get('x-goog-upload-size-received')).toBe('5');
    expect(last.status).toBe(200);
    expect(last.headers.get('x-goog-upload-status')).toBe('final');
    const body = (await last.json()) as { file: { name: string; sizeBytes: string } };
    expect(body.file.sizeBytes).toBe('10');
    const download = await fetch(`${standIn.url}/v1beta/${body.file.name}:download?alt=media`, {
      headers: { 'x-goog-api-key': 'local' },
    });
    expect(await download.text()).toBe('0123456789');
  });

  it('refuses a non-final chunk off the announced granularity with 400, keeping what it had', async () => {
    // Arrange
    standIn.configure({ files: { chunkGranularity: 4 } });
    const { url, granularity } = await rawStart('granular');
    // Act
    const sized = await rawChunk(url, 0, 'upload', 'abcdef');
    const streamed = await rawChunk(url, 0, 'upload', 'abcdef', true);
    const whole = await rawChunk(url, 0, 'upload', 'abcdefgh', true);
    const last = await rawChunk(url, 8, 'upload, finalize', 'ijk');
    // Assert
    expect(granularity).toBe('4');
    for (const refused of [sized, streamed]) {
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { status: string } }).error.status).toBe('INVALID_ARGUMENT');
      expect(refused.headers.get('x-goog-upload-status')).toBe('active');
      expect(refused.headers.get('x-goog-upload-size-received')).toBe('0');
    }
    expect(whole.headers.get('x-goog-upload-size-received')).toBe('8');
    const file = ((await last.json()) as { file: { name: string; sizeBytes: string } }).file;
    expect(file.sizeBytes).toBe('11');
    const download = await fetch(`${standIn.url}/v1beta/${file.name}:download?alt=media`, {
      headers: { 'x-goog-api-key': 'local' },
    });
    expect(await download.text()).toBe('abcdefghijk');
  });

  it('enforces the size limits of a file and of the project on upload', async () => {
    // Arrange: room for 150 more bytes in the project, 100 in one file.
    const held = standIn.stats().files.bytes;
    standIn.configure({ files: { chunkGranularity: 4, maxFileBytes: 100, maxProjectBytes: held + 150 } });
    const upload = (text: string) =>
      ai.files.upload({ file: new Blob([text], { type: 'text/plain' }), config: { displayName: 'limits' } });
    // Act
    const tooBigDeclared = await expectApiError(() => upload('x'.repeat(101)));
    const { url } = await rawStart('too big, undeclared');
    const growing = await rawChunk(url, 0, 'upload', 'x'.repeat(96));
    const tooBig = await rawChunk(url, 96, 'upload, finalize', 'x'.repeat(5), true);
    const cancelled = await fetch(url, {
      method: 'POST',
      headers: { 'x-goog-api-key': 'local', 'x-goog-upload-command': 'cancel' },
    });
    const first = await upload('a'.repeat(100));
    const projectFull = await expectApiError(() => upload('b'.repeat(100)));
    await ai.files.delete({ name: first.name ?? '' });
    const afterDelete = await upload('c'.repeat(100));
    // Assert
    expect(tooBigDeclared).toMatchObject({ status: 400, rpcStatus: 'INVALID_ARGUMENT' });
    expect(growing.status).toBe(200);
    expect(tooBig.status).toBe(400);
    expect(tooBig.headers.get('x-goog-upload-size-received')).toBe('96');
    expect(cancelled.headers.get('x-goog-upload-status')).toBe('cancelled');
    expect(first.sizeBytes).toBe('100');
    expect(projectFull).toMatchObject({ status: 429, rpcStatus: 'RESOURCE_EXHAUSTED' });
    expect(afterDelete.sizeBytes).toBe('100');
  });
});
