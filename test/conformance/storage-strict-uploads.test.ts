import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Bucket } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RESUMABLE_GRANULARITY,
  type StorageEmulator,
  startStorageEmulator,
} from '../../infra/local/storage/server.js';
import { storageClientFor } from '../helpers/storage.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const UNIT = RESUMABLE_GRANULARITY;

let strict: StorageEmulator;
let ideal: StorageEmulator;
let bucket: Bucket;
let idealBucket: Bucket;

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

/** One PUT of `body` to a session URI with `Content-Range`; the answer's status and Range. */
async function putChunk(uri: string, contentRange: string, body?: Buffer) {
  const response = await fetch(uri, {
    method: 'PUT',
    headers: { 'content-range': contentRange },
    ...(body ? { body } : {}),
  });
  await response.arrayBuffer();
  return { status: response.status, range: response.headers.get('range') };
}

/** The session's status; a 503 (the cut-off request still being wound up) is asked again. */
async function statusOf(uri: string) {
  for (let attempt = 0; ; attempt++) {
    const status = await putChunk(uri, 'bytes */*');
    if (status.status !== 503 || attempt >= 100) return status;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Sends `sent` bytes of a chunk to a session URI and then destroys the connection, the way a
 * dropped network cuts a request off; resolves once the server has seen the socket close.
 */
async function cutOffChunk(uri: string, data: Buffer, sent: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const req = request(uri, {
      method: 'PUT',
      headers: {
        'content-range': `bytes 0-${data.length - 1}/${data.length}`,
        'content-length': String(data.length),
      },
    });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.write(data.subarray(0, sent), () => {
      // Let the bytes reach the server before the connection drops.
      setTimeout(() => req.destroy(), 300);
    });
  });
}

/**
 * A TCP proxy in front of `target` that cuts the connection carrying the first upload PUT once
 * `cutAfter` bytes of it have passed (the rest of that connection is lost, as on a dropped
 * network), and logs the `Content-Range` of every upload PUT it forwards.
 */
async function startCuttingProxy(target: string, cutAfter: number) {
  const { port } = new URL(target);
  const ranges: string[] = [];
  let cut = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(port), '127.0.0.1');
    sockets.add(client).add(upstream);
    let putBytes = -1;
    client.on('data', (data: Buffer) => {
      const text = data.toString('latin1');
      for (const match of text.matchAll(/PUT \/upload[^\r]*\r\n(?:[^\r]+\r\n)*?content-range: ([^\r]+)/gi)) {
        ranges.push(match[1]!);
      }
      if (!cut && putBytes < 0 && text.includes('PUT /upload')) putBytes = 0;
      if (!cut && putBytes >= 0) {
        putBytes += data.length;
        if (putBytes > cutAfter) {
          cut = true;
          upstream.end();
          client.destroy();
          return;
        }
      }
      upstream.write(data);
    });
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    ranges,
    wasCut: () => cut,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

beforeAll(async () => {
  strict = await startStorageEmulator({ profile: 'strict', events: { timeScale: 0.001 } });
  ideal = await startStorageEmulator();
  [bucket] = await storageClientFor(strict.url, 'strict-uploads').createBucket('strict-uploads');
  [idealBucket] = await storageClientFor(ideal.url, 'ideal-uploads').createBucket('ideal-uploads');
});

afterAll(async () => {
  await strict?.close();
  await ideal?.close();
});

describe('resumable uploads under strict: whole 256 KiB units per non-final chunk', () => {
  it('persists a 300 KiB non-final chunk only up to 256 KiB, says so in Range, and takes the rest resent', async () => {
    // Arrange
    const data = randomBytes(700 * KIB);
    const file = bucket.file('raw/partial.bin');
    const [uri] = await file.createResumableUpload();

    // Act
    const first = await putChunk(uri, `bytes 0-${300 * KIB - 1}/*`, data.subarray(0, 300 * KIB));
    const status = await putChunk(uri, 'bytes */*');
    const rest = await putChunk(uri, `bytes ${UNIT}-${data.length - 1}/${data.length}`, data.subarray(UNIT));
    const [downloaded] = await file.download();

    // Assert
    expect(first).toEqual({ status: 308, range: `bytes=0-${UNIT - 1}` });
    expect(status).toEqual({ status: 308, range: `bytes=0-${UNIT - 1}` });
    expect(rest.status).toBe(200);
    expect(downloaded.equals(data)).toBe(true);
  });

  it('answers a non-final chunk under 256 KiB with a 308 and no Range: nothing persisted', async () => {
    // Arrange
    const data = randomBytes(100 * KIB);
    const [uri] = await bucket.file('raw/small-chunk.bin').createResumableUpload();

    // Act
    const chunk = await putChunk(uri, `bytes 0-${data.length - 1}/*`, data);
    const final = await putChunk(uri, `bytes 0-${data.length - 1}/${data.length}`, data);

    // Assert
    expect(chunk).toEqual({ status: 308, range: null });
    expect(final.status).toBe(200);
  });

  it('keeps only whole units of a request cut off mid-way', async () => {
    // Arrange
    const data = randomBytes(2 * UNIT + 50 * KIB);
    const file = bucket.file('raw/cut-off.bin');
    const [uri] = await file.createResumableUpload();

    // Act: the connection drops after 1.5 units of the (final) chunk.
    await cutOffChunk(uri, data, UNIT + UNIT / 2);
    const status = await statusOf(uri);
    const offset = Number(status.range?.split('-')[1]) + 1;
    const rest = await putChunk(
      uri,
      `bytes ${offset}-${data.length - 1}/${data.length}`,
      data.subarray(offset),
    );
    const [downloaded] = await file.download();

    // Assert
    expect(status).toEqual({ status: 308, range: `bytes=0-${UNIT - 1}` });
    expect(rest.status).toBe(200);
    expect(downloaded.equals(data)).toBe(true);
  });

  it('keeps every byte of the same chunk under ideal', async () => {
    // Arrange
    const data = randomBytes(300 * KIB);
    const [uri] = await idealBucket.file('raw/partial.bin').createResumableUpload();

    // Act
    const first = await putChunk(uri, `bytes 0-${data.length - 1}/*`, data);

    // Assert
    expect(first).toEqual({ status: 308, range: `bytes=0-${data.length - 1}` });
  });
});

describe('the official client under strict', () => {
  it('completes a chunked upload whose chunk size is not a whole number of units, byte-identical', async () => {
    // Arrange: 300 KiB chunks persist 256 KiB each; the client must read Range and resend.
    const data = randomBytes(5 * 300 * KIB + 12_345);
    const file = bucket.file('client/odd-chunks.bin');

    // Act
    await pipeline(Readable.from([data]), file.createWriteStream({ resumable: true, chunkSize: 300 * KIB }));
    const [downloaded] = await file.download();
    const [metadata] = await file.getMetadata();

    // Assert
    expect(downloaded.equals(data)).toBe(true);
    expect(metadata.size).toBe(String(data.length));
    expect(metadata.md5Hash).toBe(md5(data));
  });

  it('resumes a chunked upload cut off mid-chunk from the last whole unit, byte-identical', async () => {
    // Arrange: the client retries only conditional uploads, hence ifGenerationMatch.
    const proxy = await startCuttingProxy(strict.url, 600 * KIB);
    const viaProxy = storageClientFor(proxy.url, 'strict-uploads').bucket('strict-uploads');
    const data = randomBytes(3 * MIB + 4321);
    const file = viaProxy.file('client/cut-off.bin');

    // Act
    await pipeline(
      Readable.from([data]),
      file.createWriteStream({
        resumable: true,
        chunkSize: MIB,
        preconditionOpts: { ifGenerationMatch: 0 },
      }),
    );
    const [downloaded] = await bucket.file('client/cut-off.bin').download();
    await proxy.close();

    // Assert: after the cut and a status query, the next chunk starts at a 256 KiB boundary.
    const starts = proxy.ranges.flatMap((r) => /^bytes (\d+)-/.exec(r)?.[1] ?? []).map(Number);
    expect(proxy.wasCut()).toBe(true);
    expect(proxy.ranges).toContain('bytes */*');
    expect(starts[1]).toBeGreaterThan(0);
    expect(starts[1]! % UNIT).toBe(0);
    expect(starts[1]).toBeLessThan(MIB);
    expect(downloaded.equals(data)).toBe(true);
  });

  it('completes a chunked upload in whole units, byte-identical', async () => {
    // Arrange
    const data = randomBytes(4 * UNIT + 777);
    const file = bucket.file('client/unit-chunks.bin');

    // Act
    await pipeline(Readable.from([data]), file.createWriteStream({ resumable: true, chunkSize: UNIT }));
    const [downloaded] = await file.download();

    // Assert
    expect(downloaded.equals(data)).toBe(true);
  });

  it('completes the default single-request resumable stream and save(), byte-identical', async () => {
    // Arrange
    const streamed = randomBytes(3 * UNIT + 99);
    const saved = randomBytes(UNIT + 1);
    const streamedFile = bucket.file('client/single-request.bin');
    const savedFile = bucket.file('client/saved.bin');

    // Act: chunks of 64 KiB arriving one by one, as a product stream would.
    const pieces = Array.from({ length: Math.ceil(streamed.length / (64 * KIB)) }, (_, i) =>
      streamed.subarray(i * 64 * KIB, (i + 1) * 64 * KIB),
    );
    await pipeline(Readable.from(pieces), streamedFile.createWriteStream({ resumable: true }));
    await savedFile.save(saved);
    const [streamedBack] = await streamedFile.download();
    const [savedBack] = await savedFile.download();

    // Assert
    expect(streamedBack.equals(streamed)).toBe(true);
    expect(savedBack.equals(saved)).toBe(true);
  });
});
