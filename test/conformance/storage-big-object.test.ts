import { type ChildProcess, spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageClientFor } from '../helpers/storage.js';

/** Object size; 256 MB keeps CI quick, `STORAGE_BIG_OBJECT_MB=1024` runs the gigabyte case. */
const SIZE_MB = Number(process.env.STORAGE_BIG_OBJECT_MB ?? 256);
const SIZE = SIZE_MB * 1024 * 1024;
const BLOCK = 1024 * 1024;
const CHUNK_SIZE = 32 * 1024 * 1024;

/**
 * Deterministic pseudo-random bytes (AES-128-CTR keystream), produced block by block so
 * neither side ever holds the object; the sha256 is taken as the bytes go out.
 */
function generated(size: number, digest: ReturnType<typeof createHash>): Readable {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(BLOCK);
  let produced = 0;
  return new Readable({
    read() {
      if (produced >= size) {
        this.push(null);
        return;
      }
      const length = Math.min(BLOCK, size - produced);
      const block = cipher.update(zeros.subarray(0, length));
      produced += length;
      digest.update(block);
      this.push(block);
    },
  });
}

async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

let child: ChildProcess;
let url: string;

beforeAll(async () => {
  // The emulator runs in its own process so its peak memory can be read on its own.
  child = spawn(process.execPath, ['--import', 'tsx', 'infra/local/storage/main.ts', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`emulator exited early with ${code}`)));
    lines.on('line', (line) => {
      if (line.startsWith('ready: '))
        resolve((JSON.parse(line.slice('ready: '.length)) as { url: string }).url);
    });
  });
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
});

describe(`a ${SIZE_MB} MB object`, () => {
  it('uploads in chunks and downloads byte-identical with bounded emulator memory', async () => {
    // Arrange
    const storage = storageClientFor(url, 'big');
    const [bucket] = await storage.createBucket('big-objects');
    const file = bucket.file('big/generated.bin');
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let receivedBytes = 0;

    // Act
    const uploadStart = performance.now();
    await pipeline(generated(SIZE, sent), file.createWriteStream({ resumable: true, chunkSize: CHUNK_SIZE }));
    const uploadSeconds = (performance.now() - uploadStart) / 1000;
    const downloadStart = performance.now();
    await pipeline(
      file.createReadStream(),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          received.update(chunk);
          receivedBytes += chunk.length;
          done();
        },
      }),
    );
    const downloadSeconds = (performance.now() - downloadStart) / 1000;
    const peak = await peakRssMb(child.pid!);
    const [metadata] = await file.getMetadata();

    // Assert
    process.stdout.write(
      `${JSON.stringify({
        sizeMb: SIZE_MB,
        uploadMBps: +(SIZE_MB / uploadSeconds).toFixed(1),
        downloadMBps: +(SIZE_MB / downloadSeconds).toFixed(1),
        uploadSeconds: +uploadSeconds.toFixed(1),
        downloadSeconds: +downloadSeconds.toFixed(1),
        emulatorPeakRssMb: +peak.toFixed(1),
      })}\n`,
    );
    expect(metadata.size).toBe(String(SIZE));
    expect(receivedBytes).toBe(SIZE);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
    expect(peak).toBeLessThan(200);
  }, 600_000);
});
