import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ApiError, type Bucket, Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type StorageEmulator, startStorageEmulator } from '../../infra/local/storage/server.js';
import { storageClientFor } from '../helpers/storage.js';

const PROJECT = 'conformance-project';

let emulator: StorageEmulator;
let storage: Storage;
let bucket: Bucket;

/** The error the client rejects with, for assertions on code and reason. */
async function apiError(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    return error as ApiError;
  }
  throw new Error('expected the call to fail');
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

beforeAll(async () => {
  emulator = await startStorageEmulator({ projectId: PROJECT });
  storage = storageClientFor(emulator.url, PROJECT);
  [bucket] = await storage.createBucket('conformance-bucket');
});

afterAll(async () => {
  await emulator?.close();
});

describe('buckets', () => {
  it('creates, gets, lists by project and tells existence', async () => {
    // Arrange
    const fresh = storage.bucket('bucket-lifecycle');

    // Act
    const existedBefore = (await fresh.exists())[0];
    await fresh.create();
    const [metadata] = await fresh.getMetadata();
    const [buckets] = await storage.getBuckets();
    const existedAfter = (await fresh.exists())[0];

    // Assert
    expect(existedBefore).toBe(false);
    expect(existedAfter).toBe(true);
    expect(metadata).toMatchObject({
      kind: 'storage#bucket',
      name: 'bucket-lifecycle',
      storageClass: 'STANDARD',
    });
    expect(buckets.map((b) => b.name)).toEqual(
      expect.arrayContaining(['bucket-lifecycle', 'conformance-bucket']),
    );
  });

  it('refuses a duplicate bucket with 409 and deleting a non-empty one with 409', async () => {
    // Arrange
    const busy = storage.bucket('bucket-busy');
    await busy.create();
    await busy.file('x').save('x');

    // Act
    const duplicate = await apiError(storage.createBucket('bucket-busy'));
    const notEmpty = await apiError(busy.delete());
    await busy.file('x').delete();
    await busy.delete();

    // Assert
    expect(duplicate.code).toBe(409);
    expect(notEmpty.code).toBe(409);
    expect(notEmpty.message).toBe('The bucket you tried to delete is not empty.');
    expect((await busy.exists())[0]).toBe(false);
  });

  it('answers 404 for a missing bucket', async () => {
    // Act
    const error = await apiError(storage.bucket('no-such-bucket').getMetadata());

    // Assert
    expect(error.code).toBe(404);
    expect(error.errors?.[0]?.reason).toBe('notFound');
  });
});

describe('uploads and downloads', () => {
  it('saves with the default (resumable) path and downloads with hash validation', async () => {
    // Arrange
    const data = randomBytes(300_000);
    const file = bucket.file('uploads/default.bin');

    // Act
    await file.save(data, { contentType: 'application/x-test', metadata: { metadata: { origin: 'test' } } });
    const [downloaded] = await file.download();
    const [metadata] = await file.getMetadata();

    // Assert
    expect(downloaded.equals(data)).toBe(true);
    expect(metadata).toMatchObject({
      kind: 'storage#object',
      name: 'uploads/default.bin',
      bucket: 'conformance-bucket',
      contentType: 'application/x-test',
      size: String(data.length),
      md5Hash: md5Base64(data),
      metageneration: '1',
      storageClass: 'STANDARD',
      metadata: { origin: 'test' },
    });
    expect(metadata.generation).toMatch(/^\d{16}$/);
    expect(metadata.id).toBe(`conformance-bucket/uploads/default.bin/${metadata.generation}`);
  });

  it('uploads with multipart (resumable: false) and validates md5 on download', async () => {
    // Arrange
    const data = Buffer.from('multipart body\r\n--not-a-boundary\r\n'.repeat(5000));
    const file = bucket.file('uploads/multipart.txt');

    // Act
    await file.save(data, { resumable: false, contentType: 'text/plain' });
    const [downloaded] = await file.download({ validation: 'md5' });

    // Assert
    expect(downloaded.equals(data)).toBe(true);
    expect(file.metadata.contentType).toBe('text/plain');
  });

  it('uploads an empty object both ways', async () => {
    // Act
    await bucket.file('uploads/empty-simple').save('', { resumable: false });
    await bucket.file('uploads/empty-resumable').save('', { resumable: true });
    const [a] = await bucket.file('uploads/empty-simple').download();
    const [b] = await bucket.file('uploads/empty-resumable').download();

    // Assert
    expect(a.length).toBe(0);
    expect(b.length).toBe(0);
  });

  it('uploads in chunks with createWriteStream({ resumable, chunkSize })', async () => {
    // Arrange
    const data = randomBytes(256 * 1024 * 3 + 12_345);
    const file = bucket.file('uploads/chunked.bin');

    // Act
    await pipeline(Readable.from([data]), file.createWriteStream({ resumable: true, chunkSize: 256 * 1024 }));
    const [downloaded] = await file.download();

    // Assert
    expect(downloaded.equals(data)).toBe(true);
  });

  it('uploads a local file with bucket.upload()', async () => {
    // Arrange
    const dir = await mkdtemp(join(tmpdir(), 'storage-conformance-'));
    const path = join(dir, 'local.jsonl');
    const data = Buffer.from('{"prompt":"hi"}\n'.repeat(1000));
    await writeFile(path, data);

    // Act
    const [file] = await bucket.upload(path, { destination: 'inbox/local.jsonl' });
    const [downloaded] = await file.download();
    await rm(dir, { recursive: true, force: true });

    // Assert
    expect(downloaded.equals(data)).toBe(true);
    expect(file.metadata.name).toBe('inbox/local.jsonl');
  });

  it('resumes an upload session through its URI and reports progress with 308', async () => {
    // Arrange
    const data = randomBytes(512 * 1024);
    const file = bucket.file('uploads/session.bin');
    const [uri] = await file.createResumableUpload();

    // Act: first half by hand, status query, then the client finishes from the reported offset.
    const half = 256 * 1024;
    const first = await fetch(uri, {
      method: 'PUT',
      headers: { 'content-range': `bytes 0-${half - 1}/*` },
      body: data.subarray(0, half),
    });
    const status = await fetch(uri, { method: 'PUT', headers: { 'content-range': 'bytes */*' } });
    await pipeline(
      Readable.from([data]),
      file.createWriteStream({ uri, resumable: true, validation: false }),
    );
    const [downloaded] = await file.download();

    // Assert
    expect(uri).toContain('upload_id=');
    expect(first.status).toBe(308);
    expect(first.headers.get('range')).toBe(`bytes=0-${half - 1}`);
    expect(status.status).toBe(308);
    expect(status.headers.get('range')).toBe(`bytes=0-${half - 1}`);
    expect(downloaded.equals(data)).toBe(true);
  });

  it('cancels a resumable session with DELETE (499) and forgets it', async () => {
    // Arrange
    const [uri] = await bucket.file('uploads/cancelled.bin').createResumableUpload();

    // Act
    const cancel = await fetch(uri, { method: 'DELETE' });
    const after = await fetch(uri, { method: 'PUT', headers: { 'content-range': 'bytes */*' } });

    // Assert
    expect(cancel.status).toBe(499);
    expect(after.status).toBe(404);
    expect((await bucket.file('uploads/cancelled.bin').exists())[0]).toBe(false);
  });

  it('accepts a media upload and rejects a wrong declared hash', async () => {
    // Arrange
    const data = Buffer.from('media upload');
    const base = `${emulator.url}/upload/storage/v1/b/conformance-bucket/o`;

    // Act
    const ok = await fetch(`${base}?uploadType=media&name=uploads%2Fmedia.txt`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: data,
    });
    const bad = await fetch(`${base}?uploadType=media&name=uploads%2Fmedia-bad.txt`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'x-goog-hash': `md5=${md5Base64(Buffer.from('other'))}` },
      body: data,
    });
    const [downloaded] = await bucket.file('uploads/media.txt').download();

    // Assert
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({
      name: 'uploads/media.txt',
      contentType: 'text/plain',
      size: '12',
    });
    expect(bad.status).toBe(400);
    expect(downloaded.toString()).toBe('media upload');
  });

  it('serves ranges with 206 through createReadStream({ start, end })', async () => {
    // Arrange
    const data = randomBytes(100_000);
    const file = bucket.file('ranges/data.bin');
    await file.save(data);

    // Act
    const middle = await readAll(file.createReadStream({ start: 1000, end: 1999 }));
    const tail = await readAll(file.createReadStream({ start: 99_000 }));
    const raw = await fetch(`${emulator.url}/storage/v1/b/conformance-bucket/o/ranges%2Fdata.bin?alt=media`, {
      headers: { range: 'bytes=-10' },
    });
    const unsatisfiable = await fetch(
      `${emulator.url}/storage/v1/b/conformance-bucket/o/ranges%2Fdata.bin?alt=media`,
      {
        headers: { range: 'bytes=200000-' },
      },
    );

    // Assert
    expect(middle.equals(data.subarray(1000, 2000))).toBe(true);
    expect(tail.equals(data.subarray(99_000))).toBe(true);
    expect(raw.status).toBe(206);
    expect(raw.headers.get('content-range')).toBe('bytes 99990-99999/100000');
    expect(Buffer.from(await raw.arrayBuffer()).equals(data.subarray(99_990))).toBe(true);
    expect(raw.headers.get('x-goog-stored-content-length')).toBe('100000');
    expect(unsatisfiable.status).toBe(416);
  });

  it('answers 404 with the real body for a missing object', async () => {
    // Act
    const error = await apiError(bucket.file('missing/object.txt').download());
    const exists = await bucket.file('missing/object.txt').exists();

    // Assert
    expect(error.code).toBe(404);
    expect(exists[0]).toBe(false);
  });

  it('works with STORAGE_EMULATOR_HOST, where the client drops the /storage/v1 prefix', async () => {
    // Arrange
    vi.stubEnv('STORAGE_EMULATOR_HOST', emulator.url);
    const viaEnv = new Storage({ projectId: PROJECT });
    vi.unstubAllEnvs();
    const file = viaEnv.bucket('conformance-bucket').file('env/host.txt');

    // Act
    await file.save('via env');
    const [downloaded] = await file.download();
    const [files] = await viaEnv.bucket('conformance-bucket').getFiles({ prefix: 'env/' });

    // Assert
    expect(downloaded.toString()).toBe('via env');
    expect(files.map((f) => f.name)).toEqual(['env/host.txt']);
  });
});

describe('listing', () => {
  beforeAll(async () => {
    const names = [
      'list/a.txt',
      'list/b.txt',
      'list/dir1/x.txt',
      'list/dir1/y.txt',
      'list/dir2/z.txt',
      'list/c.txt',
    ];
    for (const name of names) await bucket.file(name).save(name, { resumable: false });
  });

  it('lists with a prefix in lexicographic order', async () => {
    // Act
    const [files] = await bucket.getFiles({ prefix: 'list/' });

    // Assert
    expect(files.map((f) => f.name)).toEqual([
      'list/a.txt',
      'list/b.txt',
      'list/c.txt',
      'list/dir1/x.txt',
      'list/dir1/y.txt',
      'list/dir2/z.txt',
    ]);
  });

  it('collapses names past the delimiter into prefixes', async () => {
    // Act
    const [files, , response] = await bucket.getFiles({
      prefix: 'list/',
      delimiter: '/',
      autoPaginate: false,
    });

    // Assert
    expect(files.map((f) => f.name)).toEqual(['list/a.txt', 'list/b.txt', 'list/c.txt']);
    expect((response as { prefixes?: string[] }).prefixes).toEqual(['list/dir1/', 'list/dir2/']);
  });

  it('pages with maxResults and pageToken', async () => {
    // Act
    const [page1, next1] = await bucket.getFiles({ prefix: 'list/', maxResults: 4, autoPaginate: false });
    const [page2, next2] = await bucket.getFiles({ ...(next1 as object), autoPaginate: false });

    // Assert
    expect(page1.map((f) => f.name)).toEqual(['list/a.txt', 'list/b.txt', 'list/c.txt', 'list/dir1/x.txt']);
    expect(page2.map((f) => f.name)).toEqual(['list/dir1/y.txt', 'list/dir2/z.txt']);
    expect(next2).toBeNull();
  });

  it('walks past the 1,000-item page with autoPaginate', async () => {
    // Arrange: more objects than one page of the real service's default size.
    const names = Array.from({ length: 1005 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((n) => bucket.file(n).save('', { resumable: false })));
    }

    // Act
    const [all] = await bucket.getFiles({ prefix: 'many/' });
    const [firstPage, next] = await bucket.getFiles({ prefix: 'many/', autoPaginate: false });

    // Assert
    expect(all.map((f) => f.name)).toEqual(names);
    expect(firstPage).toHaveLength(1000);
    expect(next).toMatchObject({ pageToken: expect.any(String) });
  });

  it('pages through prefixes without repeating them', async () => {
    // Act
    const [page1, next1, raw1] = await bucket.getFiles({
      prefix: 'list/',
      delimiter: '/',
      maxResults: 4,
      autoPaginate: false,
    });
    const [page2, , raw2] = await bucket.getFiles({ ...(next1 as object), autoPaginate: false });

    // Assert
    expect(page1.map((f) => f.name)).toEqual(['list/a.txt', 'list/b.txt', 'list/c.txt']);
    expect((raw1 as { prefixes?: string[] }).prefixes).toEqual(['list/dir1/']);
    expect(page2).toHaveLength(0);
    expect((raw2 as { prefixes?: string[] }).prefixes).toEqual(['list/dir2/']);
  });

  it('honours startOffset and endOffset', async () => {
    // Act
    const [files] = await bucket.getFiles({
      prefix: 'list/',
      startOffset: 'list/b',
      endOffset: 'list/dir1/y',
    });

    // Assert
    expect(files.map((f) => f.name)).toEqual(['list/b.txt', 'list/c.txt', 'list/dir1/x.txt']);
  });
});

describe('generations, preconditions and metadata', () => {
  it('gives each write a new, larger generation', async () => {
    // Arrange
    const file = bucket.file('gen/object.txt');

    // Act
    await file.save('one');
    const first = (await file.getMetadata())[0].generation;
    await file.save('two');
    const second = (await file.getMetadata())[0].generation;

    // Assert
    expect(BigInt(String(second))).toBeGreaterThan(BigInt(String(first)));
  });

  it('creates only if absent with ifGenerationMatch: 0, else 412 conditionNotMet', async () => {
    // Arrange
    const file = bucket.file('gen/create-once.txt');

    // Act
    await file.save('first', { preconditionOpts: { ifGenerationMatch: 0 } });
    const again = await apiError(
      file.save('second', { preconditionOpts: { ifGenerationMatch: 0 }, resumable: false }),
    );
    const againResumable = await apiError(
      file.save('second', { preconditionOpts: { ifGenerationMatch: 0 } }),
    );
    const [content] = await file.download();

    // Assert
    expect(again.code).toBe(412);
    expect(again.errors?.[0]?.reason).toBe('conditionNotMet');
    expect(again.message).toBe('At least one of the pre-conditions you specified did not hold.');
    // The resumable path surfaces the client's HTTP error, which carries the status instead.
    expect((againResumable as unknown as { status?: number }).status).toBe(412);
    expect(content.toString()).toBe('first');
  });

  it('checks ifGenerationMatch, ifGenerationNotMatch and ifMetagenerationMatch', async () => {
    // Arrange
    const file = bucket.file('gen/conditions.txt');
    await file.save('v1', { resumable: false });
    const generation = Number((await file.getMetadata())[0].generation);

    // Act
    await file.save('v2', { resumable: false, preconditionOpts: { ifGenerationMatch: generation } });
    const stale = await apiError(
      file.save('v3', { resumable: false, preconditionOpts: { ifGenerationMatch: generation } }),
    );
    const notMatch = await apiError(
      bucket.file('gen/conditions.txt').delete({ ifGenerationNotMatch: Number(file.metadata.generation) }),
    );
    const metaStale = await apiError(
      file.setMetadata({ metadata: { a: '1' } }, { ifMetagenerationMatch: 7 }),
    );

    // Assert
    expect(stale.code).toBe(412);
    expect(notMatch.code).toBe(412);
    expect(metaStale.code).toBe(412);
    expect((await file.download())[0].toString()).toBe('v2');
  });

  it('patches metadata, bumps the metageneration and keeps the generation', async () => {
    // Arrange
    const file = bucket.file('gen/patched.txt');
    await file.save('data', { metadata: { metadata: { keep: 'yes', drop: 'yes' } } });
    const [before] = await file.getMetadata();

    // Act
    const [after] = await file.setMetadata(
      { contentType: 'text/markdown', metadata: { drop: null, added: 'new' } },
      { ifMetagenerationMatch: 1 },
    );

    // Assert
    expect(after.metageneration).toBe('2');
    expect(after.generation).toBe(before.generation);
    expect(after.contentType).toBe('text/markdown');
    expect(after.metadata).toEqual({ keep: 'yes', added: 'new' });
  });

  it('deletes an object', async () => {
    // Arrange
    const file = bucket.file('gen/deleted.txt');
    await file.save('bye');

    // Act
    await file.delete();
    const again = await apiError(file.delete());

    // Assert
    expect((await file.exists())[0]).toBe(false);
    expect(again.code).toBe(404);
  });
});

describe('copy, rewrite and compose', () => {
  it('copies with file.copy() (rewriteTo), keeping bytes, hashes and metadata', async () => {
    // Arrange
    const data = randomBytes(50_000);
    const source = bucket.file('copy/source.bin');
    await source.save(data, { contentType: 'application/x-src', metadata: { metadata: { k: 'v' } } });

    // Act
    const [copied] = await source.copy(bucket.file('copy/target.bin'));
    const [metadata] = await copied.getMetadata();
    const [downloaded] = await copied.download();

    // Assert
    expect(downloaded.equals(data)).toBe(true);
    expect(metadata).toMatchObject({
      contentType: 'application/x-src',
      md5Hash: md5Base64(data),
      metadata: { k: 'v' },
    });
  });

  it('copies across buckets through the copyTo endpoint', async () => {
    // Arrange
    await storage.createBucket('copy-destination');
    await bucket.file('copy/cross.txt').save('cross');

    // Act
    const response = await fetch(
      `${emulator.url}/storage/v1/b/conformance-bucket/o/copy%2Fcross.txt/copyTo/b/copy-destination/o/landed.txt`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' },
    );
    const [downloaded] = await storage.bucket('copy-destination').file('landed.txt').download();

    // Assert
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      kind: 'storage#object',
      bucket: 'copy-destination',
      name: 'landed.txt',
    });
    expect(downloaded.toString()).toBe('cross');
  });

  it('composes sources into one object with a crc32c and a component count', async () => {
    // Arrange
    const parts = [randomBytes(1000), randomBytes(2000), randomBytes(3000)];
    for (const [i, part] of parts.entries()) await bucket.file(`compose/part-${i}`).save(part);

    // Act
    const [combined] = await bucket.combine(
      parts.map((_, i) => `compose/part-${i}`),
      bucket.file('compose/whole.bin'),
    );
    const [metadata] = await combined.getMetadata();
    const [downloaded] = await combined.download();

    // Assert
    expect(downloaded.equals(Buffer.concat(parts))).toBe(true);
    expect(metadata.componentCount).toBe(3);
    expect(metadata.size).toBe('6000');
    expect(metadata.md5Hash).toBeUndefined();
  });

  it('fails a copy from a missing source with 404', async () => {
    // Act
    const error = await apiError(bucket.file('copy/nothing').copy('copy/never'));

    // Assert
    expect(error.code).toBe(404);
  });
});
