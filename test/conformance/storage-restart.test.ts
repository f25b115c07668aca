import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { type StorageEmulator, startStorageEmulator } from '../../infra/local/storage/server.js';
import { storageClientFor } from '../helpers/storage.js';

const PROJECT = 'restart-project';

let dataDir: string | undefined;
const running: StorageEmulator[] = [];

async function start(options: { durable?: boolean; profile?: 'strict' } = {}): Promise<StorageEmulator> {
  dataDir ??= await mkdtemp(join(tmpdir(), 'storage-restart-'));
  const emulator = await startStorageEmulator({ ...options, dataDir, projectId: PROJECT });
  running.push(emulator);
  return emulator;
}

afterEach(async () => {
  for (const emulator of running.splice(0)) await emulator.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

describe('an emulator restarted on the same data dir (strict: durable)', () => {
  it('serves the same buckets, objects, bytes, metadata and generations', async () => {
    // Arrange: one of each way in, a metadata patch, an overwrite, a delete, a compose.
    const before = await start({ profile: 'strict' });
    const storage = storageClientFor(before.url, PROJECT);
    const [bucket] = await storage.createBucket('kept-bucket', { labels: { team: 'fanout' } });
    const big = randomBytes(3 * 256 * 1024 + 1234);
    await pipeline(
      Readable.from([big]),
      bucket.file('inbox/big.bin').createWriteStream({ resumable: true, chunkSize: 256 * 1024 }),
    );
    await bucket.file('inbox/small.jsonl').save('{"prompt":"hi"}\n', {
      resumable: false,
      contentType: 'application/jsonl',
      metadata: { metadata: { model: 'gemini-2.5-flash' } },
    });
    await bucket.file('inbox/small.jsonl').setMetadata({ metadata: { mode: 'batch' } });
    await bucket.file('results/overwritten.txt').save('first', { resumable: false });
    await bucket.file('results/overwritten.txt').save('second', { resumable: false });
    await bucket.file('results/deleted.txt').save('gone', { resumable: false });
    await bucket.file('results/deleted.txt').delete();
    await bucket.combine(['inbox/small.jsonl', 'results/overwritten.txt'], bucket.file('composed.bin'));
    const [filesBefore] = await bucket.getFiles();
    const metaBefore = Object.fromEntries(filesBefore.map((f) => [f.name, f.metadata]));

    // Act
    await before.close();
    const after = await start({ profile: 'strict' });
    const again = storageClientFor(after.url, PROJECT).bucket('kept-bucket');
    const [bucketMeta] = await again.getMetadata();
    const [filesAfter] = await again.getFiles();
    const metaAfter = Object.fromEntries(filesAfter.map((f) => [f.name, f.metadata]));
    const [bigBack] = await again.file('inbox/big.bin').download();
    const [overwritten] = await again.file('results/overwritten.txt').download();
    const [deletedExists] = await again.file('results/deleted.txt').exists();

    // Assert
    expect(bucketMeta.labels).toEqual({ team: 'fanout' });
    expect(Object.keys(metaAfter).sort()).toEqual(
      ['composed.bin', 'inbox/big.bin', 'inbox/small.jsonl', 'results/overwritten.txt'].sort(),
    );
    for (const name of Object.keys(metaBefore)) {
      const { selfLink: _a, mediaLink: _b, ...kept } = metaBefore[name]!;
      expect(metaAfter[name], name).toMatchObject(kept);
    }
    expect(metaAfter['inbox/small.jsonl']).toMatchObject({
      metageneration: '2',
      metadata: { model: 'gemini-2.5-flash', mode: 'batch' },
    });
    expect(bigBack.equals(big)).toBe(true);
    expect(overwritten.toString()).toBe('second');
    expect(deletedExists).toBe(false);
  });

  it('honours generation preconditions against restored objects and keeps generations increasing', async () => {
    // Arrange
    const before = await start({ profile: 'strict' });
    const [bucket] = await storageClientFor(before.url, PROJECT).createBucket('generations');
    await bucket.file('once.txt').save('v1', { resumable: false });
    const [{ generation: restored }] = await bucket.file('once.txt').getMetadata();
    await before.close();

    // Act
    const after = await start({ profile: 'strict' });
    const file = storageClientFor(after.url, PROJECT).bucket('generations').file('once.txt');
    const createAgain = await file
      .save('v2', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } })
      .then(
        () => 200,
        (error: { code?: number }) => error.code,
      );
    await file.save('v2', { resumable: false, preconditionOpts: { ifGenerationMatch: Number(restored) } });
    const [{ generation: next }] = await file.getMetadata();

    // Assert
    expect(createAgain).toBe(412);
    expect(BigInt(String(next))).toBeGreaterThan(BigInt(String(restored)));
  });

  it('forgets everything under ideal (index in memory), as before', async () => {
    // Arrange
    const before = await start();
    await (await storageClientFor(before.url, PROJECT).createBucket('forgotten'))[0]
      .file('x.txt')
      .save('x', { resumable: false });
    await before.close();

    // Act
    const after = await start();
    const [exists] = await storageClientFor(after.url, PROJECT).bucket('forgotten').exists();

    // Assert
    expect(after.settings.durable).toBe(false);
    expect(exists).toBe(false);
  });
});
