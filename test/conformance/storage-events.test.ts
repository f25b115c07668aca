import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/local/ports.js';
import { type StorageEmulator, startStorageEmulator } from '../../infra/local/storage/server.js';
import { storageClientFor } from '../helpers/storage.js';

interface Received {
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** A CloudEvents receiver that fails the first `failures` requests with a 500. */
async function startReceiver(
  failures = 0,
): Promise<{ url: string; received: Received[]; hits: () => number; server: Server }> {
  const received: Received[] = [];
  let hits = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits += 1;
      if (hits <= failures) {
        res.writeHead(500).end('not yet');
        return;
      }
      received.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, received, hits: () => hits, server };
}

const fastRetry = { initialBackoffMs: 20, maxBackoffMs: 100, maxAttempts: 4, timeoutMs: 2000 };

let emulator: StorageEmulator | undefined;
const servers: Server[] = [];

afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

describe('Eventarc stand-in', () => {
  it('POSTs a finalized CloudEvent in binary mode with the object as data', async () => {
    // Arrange
    const receiver = await startReceiver();
    servers.push(receiver.server);
    emulator = await startStorageEmulator({ subscriptions: [{ url: receiver.url }], eventRetry: fastRetry });
    const storage = storageClientFor(emulator.url, 'events');
    const [bucket] = await storage.createBucket('events-bucket');

    // Act
    await bucket.file('inbox/jobs.jsonl').save('{"prompt":"hi"}\n', { contentType: 'application/jsonl' });
    await emulator.idle();

    // Assert
    expect(receiver.received).toHaveLength(1);
    const [event] = receiver.received;
    expect(event!.headers).toMatchObject({
      'ce-specversion': '1.0',
      'ce-type': 'google.cloud.storage.object.v1.finalized',
      'ce-source': '//storage.googleapis.com/projects/_/buckets/events-bucket',
      'ce-subject': 'objects/inbox/jobs.jsonl',
      'content-type': expect.stringMatching(/^application\/json/),
    });
    expect(event!.headers['ce-id']).toEqual(expect.any(String));
    expect(Date.parse(String(event!.headers['ce-time']))).not.toBeNaN();
    expect(event!.body).toMatchObject({
      kind: 'storage#object',
      name: 'inbox/jobs.jsonl',
      bucket: 'events-bucket',
      contentType: 'application/jsonl',
      size: '16',
      metageneration: '1',
      generation: expect.stringMatching(/^\d+$/),
      md5Hash: expect.any(String),
      crc32c: expect.any(String),
      timeCreated: expect.any(String),
      updated: expect.any(String),
    });
    expect(emulator.stats()).toEqual({ delivered: 1, failed: 0, attempts: 1, pending: 0 });
  });

  it('sends finalized for copy, rewrite and compose destinations, and deleted when asked for it', async () => {
    // Arrange
    const receiver = await startReceiver();
    servers.push(receiver.server);
    emulator = await startStorageEmulator({ eventRetry: fastRetry });
    emulator.subscribe({
      url: receiver.url,
      bucket: 'watched',
      eventTypes: ['google.cloud.storage.object.v1.finalized', 'google.cloud.storage.object.v1.deleted'],
    });
    const storage = storageClientFor(emulator.url, 'events');
    const [watched] = await storage.createBucket('watched');
    const [other] = await storage.createBucket('unwatched');

    // Act
    await other.file('ignored.txt').save('not watched');
    await watched.file('a').save('a');
    await watched.file('a').copy(watched.file('b'));
    await watched.combine(['a', 'b'], watched.file('c'));
    await watched.file('a').delete();
    await emulator.idle();

    // Assert
    const seen = receiver.received.map(
      (r) => `${String(r.headers['ce-type']).split('.').pop()} ${r.headers['ce-subject']}`,
    );
    expect(seen.sort()).toEqual([
      'deleted objects/a',
      'finalized objects/a',
      'finalized objects/b',
      'finalized objects/c',
    ]);
  });

  it('retries a failing receiver with backoff until it accepts', async () => {
    // Arrange
    const receiver = await startReceiver(2);
    servers.push(receiver.server);
    emulator = await startStorageEmulator({ subscriptions: [{ url: receiver.url }], eventRetry: fastRetry });
    const storage = storageClientFor(emulator.url, 'events');
    const [bucket] = await storage.createBucket('retry-bucket');

    // Act
    await bucket.file('flaky.txt').save('x');
    await emulator.idle();

    // Assert
    expect(receiver.hits()).toBe(3);
    expect(receiver.received).toHaveLength(1);
    expect(emulator.stats()).toEqual({ delivered: 1, failed: 0, attempts: 3, pending: 0 });
    expect(emulator.events()[0]).toMatchObject({
      state: 'delivered',
      attempts: 3,
      subject: 'objects/flaky.txt',
    });
  });

  it('gives up after the last attempt when the receiver is unreachable', async () => {
    // Arrange: a port nothing listens on, so every attempt is a connection error.
    const url = `http://127.0.0.1:${await freePort()}/`;
    emulator = await startStorageEmulator({ subscriptions: [{ url }], eventRetry: fastRetry });
    const storage = storageClientFor(emulator.url, 'events');
    const [bucket] = await storage.createBucket('dead-letter');

    // Act
    await bucket.file('lost.txt').save('x');
    await emulator.idle();

    // Assert
    expect(emulator.stats()).toEqual({ delivered: 0, failed: 1, attempts: 4, pending: 0 });
    expect(emulator.events()[0]).toMatchObject({
      state: 'failed',
      attempts: 4,
      lastError: expect.any(String),
    });
  });

  it('keeps one CloudEvent id per delivery, unique across events', async () => {
    // Arrange
    const receiver = await startReceiver();
    servers.push(receiver.server);
    emulator = await startStorageEmulator({ subscriptions: [{ url: receiver.url }], eventRetry: fastRetry });
    const storage = storageClientFor(emulator.url, 'events');
    const [bucket] = await storage.createBucket('ids');

    // Act
    await Promise.all(Array.from({ length: 10 }, (_, i) => bucket.file(`f${i}`).save(String(i))));
    await emulator.idle();

    // Assert
    const ids = new Set(receiver.received.map((r) => r.headers['ce-id']));
    expect(ids.size).toBe(10);
  });
});
