import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeLocalOidcToken } from '../../infra/local/cloud-tasks/oidc.js';
import { freePort } from '../../infra/local/ports.js';
import {
  type StorageEmulator,
  type StorageEmulatorOptions,
  startStorageEmulator,
} from '../../infra/local/storage/server.js';
import { storageClientFor } from '../helpers/storage.js';

const PROJECT = 'events-project';
const FINALIZED = 'google.cloud.storage.object.v1.finalized';
const METADATA_UPDATED = 'google.cloud.storage.object.v1.metadataUpdated';

interface Received {
  at: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

interface Receiver {
  url: string;
  received: Received[];
  /** Arrival times of every request, refused ones included. */
  hits: number[];
}

const servers: Server[] = [];
let emulator: StorageEmulator | undefined;

/** A CloudEvents receiver that answers 500 to its first `failures` requests. */
async function startReceiver(failures = 0): Promise<Receiver> {
  const receiver: Receiver = { url: '', received: [], hits: [] };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      receiver.hits.push(at);
      if (receiver.hits.length <= failures) {
        res.writeHead(500).end('not yet');
        return;
      }
      receiver.received.push({
        at,
        headers: req.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      });
      res.writeHead(204).end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return receiver;
}

/** A strict emulator whose event clock runs `timeScale` times real time, other knobs as given. */
async function strictEmulator(options: StorageEmulatorOptions = {}): Promise<StorageEmulator> {
  emulator = await startStorageEmulator({ profile: 'strict', projectId: PROJECT, ...options });
  return emulator;
}

function subjects(received: Received[]): string[] {
  return received.map((r) => String(r.headers['ce-subject']));
}

afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

describe('the strict profile', () => {
  it('turns every behaviour on with the real services’ defaults', async () => {
    // Act
    const strict = await strictEmulator();

    // Assert
    expect(strict.settings).toEqual({
      profile: 'strict',
      uploadGranularity: 256 * 1024,
      durable: true,
      eventRetry: {
        maxAttempts: Number.POSITIVE_INFINITY,
        initialBackoffMs: 10_000,
        maxBackoffMs: 600_000,
        multiplier: 2,
        maxDurationMs: 24 * 60 * 60_000,
        timeoutMs: 60_000,
      },
      events: {
        duplicateShare: 0.1,
        delayMs: { min: 200, max: 2000 },
        reorder: true,
        oidc: true,
        serviceAccountEmail: `eventarc-trigger@${PROJECT}.iam.gserviceaccount.com`,
        timeScale: 1,
        seed: 1,
      },
    });
  });
});

describe('Eventarc stand-in under strict: at-least-once', () => {
  it('delivers an event twice with the same id when it is duplicated', async () => {
    // Arrange
    const receiver = await startReceiver();
    const strict = await strictEmulator({
      subscriptions: [{ url: receiver.url }],
      events: { duplicateShare: 1, delayMs: { min: 0, max: 50 } },
    });
    const [bucket] = await storageClientFor(strict.url, PROJECT).createBucket('dups');

    // Act
    await bucket.file('inbox/a.jsonl').save('{}\n', { resumable: false });
    await bucket.file('inbox/b.jsonl').save('{}\n', { resumable: false });
    await strict.idle();

    // Assert
    const bySubject = new Map<string, Received[]>();
    for (const r of receiver.received) {
      const subject = String(r.headers['ce-subject']);
      bySubject.set(subject, [...(bySubject.get(subject) ?? []), r]);
    }
    expect([...bySubject.keys()].sort()).toEqual(['objects/inbox/a.jsonl', 'objects/inbox/b.jsonl']);
    for (const copies of bySubject.values()) {
      expect(copies).toHaveLength(2);
      expect(copies[0]!.headers['ce-id']).toBe(copies[1]!.headers['ce-id']);
      expect(copies[0]!.body).toEqual(copies[1]!.body);
    }
    expect(strict.stats()).toMatchObject({ delivered: 4, failed: 0, pending: 0 });
    expect(strict.events().filter((e) => e.duplicate)).toHaveLength(2);
  });

  it('duplicates a share of events, not all, replayably for a seed', async () => {
    // Arrange
    const receiver = await startReceiver();
    const strict = await strictEmulator({
      subscriptions: [{ url: receiver.url }],
      events: { duplicateShare: 0.3, delayMs: { min: 0, max: 0 }, seed: 7 },
    });
    const [bucket] = await storageClientFor(strict.url, PROJECT).createBucket('some-dups');

    // Act
    for (let i = 0; i < 40; i++) await bucket.file(`f${i}`).save(String(i), { resumable: false });
    await strict.idle();

    // Assert
    const ids = receiver.received.map((r) => String(r.headers['ce-id']));
    const distinct = new Set(ids).size;
    expect(distinct).toBe(40);
    expect(ids.length - distinct).toBeGreaterThan(0);
    expect(ids.length - distinct).toBeLessThan(40);
  });

  it('holds each first attempt back by a delay within the range', async () => {
    // Arrange
    const receiver = await startReceiver();
    const strict = await strictEmulator({
      subscriptions: [{ url: receiver.url }],
      events: { duplicateShare: 0, delayMs: { min: 400, max: 600 } },
    });
    const [bucket] = await storageClientFor(strict.url, PROJECT).createBucket('delayed');

    // Act
    const writtenAt = performance.now();
    await bucket.file('late.txt').save('x', { resumable: false });
    await strict.idle();

    // Assert
    expect(receiver.received).toHaveLength(1);
    // Timers never fire early by more than a millisecond's rounding.
    expect(receiver.received[0]!.at - writtenAt).toBeGreaterThanOrEqual(399);
  });

  it('does not deliver events in the order of the writes', async () => {
    // Arrange
    const receiver = await startReceiver();
    const strict = await strictEmulator({
      subscriptions: [{ url: receiver.url }],
      events: { duplicateShare: 0, delayMs: { min: 0, max: 1500 } },
    });
    const [bucket] = await storageClientFor(strict.url, PROJECT).createBucket('reordered');
    const written = Array.from({ length: 12 }, (_, i) => `objects/f${String(i).padStart(2, '0')}`);

    // Act
    for (const subject of written) {
      await bucket.file(subject.slice('objects/'.length)).save('x', { resumable: false });
    }
    await strict.idle();

    // Assert
    const arrived = subjects(receiver.received);
    expect([...arrived].sort()).toEqual(written);
    expect(arrived).not.toEqual(written);
  });

  it('sends an OIDC-shaped bearer token with the subscriber URL as audience', async () => {
    // Arrange
    const own = await startReceiver();
    const shared = await startReceiver();
    const strict = await strictEmulator({
      subscriptions: [
        { url: own.url, serviceAccountEmail: `intake-trigger@${PROJECT}.iam.gserviceaccount.com` },
        { url: shared.url },
      ],
      events: { duplicateShare: 0, delayMs: { min: 0, max: 0 } },
    });
    const [bucket] = await storageClientFor(strict.url, PROJECT).createBucket('tokens');

    // Act
    await bucket.file('inbox/t.jsonl').save('{}\n', { resumable: false });
    await strict.idle();

    // Assert
    const ownClaims = decodeLocalOidcToken(String(own.received[0]!.headers.authorization), {
      audience: own.url,
      email: `intake-trigger@${PROJECT}.iam.gserviceaccount.com`,
    });
    const sharedClaims = decodeLocalOidcToken(String(shared.received[0]!.headers.authorization), {
      audience: shared.url,
      email: `eventarc-trigger@${PROJECT}.iam.gserviceaccount.com`,
    });
    expect(ownClaims.exp - ownClaims.iat).toBe(3600);
    expect(sharedClaims.aud).toBe(shared.url);
  });

  it('sends metadataUpdated on a metadata change, only to triggers that ask for it', async () => {
    // Arrange
    const finalizedOnly = await startReceiver();
    const metadataWatcher = await startReceiver();
    const strict = await strictEmulator({
      subscriptions: [
        { url: finalizedOnly.url },
        { url: metadataWatcher.url, eventTypes: [METADATA_UPDATED] },
      ],
      events: { timeScale: 0.01 },
    });
    const file = (await storageClientFor(strict.url, PROJECT).createBucket('patched'))[0].file(
      'inbox/p.jsonl',
    );
    await file.save('{}\n', { resumable: false, metadata: { metadata: { model: 'a' } } });

    // Act
    await file.setMetadata({ metadata: { model: 'b' } });
    await strict.idle();

    // Assert: duplicates may come (strict), so count distinct event ids.
    const types = (r: Receiver) => [
      ...new Map(r.received.map((e) => [e.headers['ce-id'], e.headers['ce-type']])).values(),
    ];
    expect(types(finalizedOnly)).toEqual([FINALIZED]);
    expect(types(metadataWatcher)).toEqual([METADATA_UPDATED]);
    expect(metadataWatcher.received[0]!.headers['ce-subject']).toBe('objects/inbox/p.jsonl');
    expect(metadataWatcher.received[0]!.body).toMatchObject({
      name: 'inbox/p.jsonl',
      metageneration: '2',
      metadata: { model: 'b' },
    });
  });

  it('retries a failing receiver on Pub/Sub’s doubling backoff (10 s, 20 s, … scaled)', async () => {
    // Arrange: the event clock 1000× faster: 10 ms, 20 ms, 40 ms, …
    const receiver = await startReceiver(5);
    const strict = await strictEmulator({
      subscriptions: [{ url: receiver.url }],
      events: { duplicateShare: 0, delayMs: { min: 0, max: 0 }, timeScale: 0.001 },
    });
    const [bucket] = await storageClientFor(strict.url, PROJECT).createBucket('backoff');

    // Act
    await bucket.file('flaky.txt').save('x', { resumable: false });
    await strict.idle();

    // Assert
    const gaps = receiver.hits.slice(1).map((at, i) => at - receiver.hits[i]!);
    expect(receiver.hits).toHaveLength(6);
    [10, 20, 40, 80, 160].forEach((backoff, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual(backoff - 1);
    });
    expect(strict.stats()).toEqual({ delivered: 1, failed: 0, attempts: 6, pending: 0 });
  });

  it('keeps retrying past any attempt count until the retention window closes, then fails', async () => {
    // Arrange: 24 h scaled to 4.3 s; nothing listens on the subscriber's port.
    const url = `http://127.0.0.1:${await freePort()}/`;
    const timeScale = 0.00005;
    const strict = await strictEmulator({
      subscriptions: [{ url }],
      events: { duplicateShare: 0, delayMs: { min: 0, max: 0 }, timeScale },
    });
    const [bucket] = await storageClientFor(strict.url, PROJECT).createBucket('window');

    // Act
    const start = performance.now();
    await bucket.file('lost.txt').save('x', { resumable: false });
    await strict.idle();
    const elapsed = performance.now() - start;

    // Assert
    const [record] = strict.events();
    expect(record).toMatchObject({ state: 'failed', lastError: expect.any(String) });
    expect(record!.attempts).toBeGreaterThan(20);
    // It gives up only when the next wait (at most 600 s scaled) would pass the window.
    expect(elapsed).toBeGreaterThanOrEqual((24 * 3600_000 - 600_000) * timeScale - 1);
    expect(strict.stats()).toMatchObject({ delivered: 0, failed: 1, pending: 0 });
  }, 20_000);
});
