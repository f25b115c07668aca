import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage } from '@google-cloud/storage';
import { itemIdForIndex } from '../../functions/core/jobs.js';
import { createPrng as prng } from '../../infra/local/prng.js';
import { runMeasured, startStandIn, startStorage } from './batch-processes.js';
import type { UploadChildInput, UploadChildOutput } from './batch-upload-child.js';

/**
 * Benchmark 1: a staged JSONL of about `bytes` bytes in the bucket, streamed into a Files API
 * upload by a measured child process (test/bench/batch-upload-child.ts). The storage emulator and
 * the Gemini stand-in are children too, their bytes on disk under `scratch` (removed afterwards).
 */
export interface UploadResult extends UploadChildOutput {
  /** The staged object: lines and bytes read from the bucket. */
  lines: number;
  objectBytes: number;
  /** Bytes the transformed `{"key","request"}` lines should make, counted while generating. */
  expectedUploadBytes: number;
  /** What the stand-in says the uploaded file holds. */
  standInSizeBytes: number;
  verified: boolean;
  /** Setup, not measured against the target: writing the object to the bucket. */
  stageSeconds: number;
  profileDir?: string;
}

const PROJECT = 'bench-batch';
const BUCKET = 'bench-batch-fanout';
const OBJECT = 'staging/bench-upload.jsonl';
/** Lines joined per piece written to the bucket. */
const PIECE_LINES = 256;

/** Sentences prompts are drawn from: plain and accented words, quotes and dashes to escape. */
function sentencePool(random: () => number): string[] {
  const words = (
    'the a model answer quota batch stream bucket token request latency throughput memory ' +
    'summarise translate classify extract compare explain list rewrite why how when where ' +
    'river mountain ledger invoice protein galaxy orchestra bicycle harbour lantern tundra ' +
    'café naïve façade jalapeño Zürich São-Paulo 東京 – — "quoted" it\'s 42 3.14 1,000 50% ' +
    'customer review weather report poem recipe contract abstract changelog backtrace'
  ).split(' ');
  return Array.from({ length: 1024 }, () => {
    const n = 8 + Math.floor(random() * 14);
    const picked = Array.from({ length: n }, () => words[Math.floor(random() * words.length)]!);
    return `${picked.join(' ')}.`;
  });
}

/**
 * The staged set: lines `{"key":"k<n>","prompt":"…"}` of about 900 characters until `bytes` is
 * reached, and the byte count of the batch lines the production code should make of them.
 */
function stagedSet(bytes: number) {
  const random = prng(8);
  const pool = sentencePool(random);
  const counted = { lines: 0, bytes: 0, uploadBytes: 0 };
  async function* source(): AsyncGenerator<string> {
    while (counted.bytes < bytes) {
      let piece = '';
      for (let k = 0; k < PIECE_LINES && counted.bytes < bytes; k++) {
        const i = counted.lines++;
        let prompt = `Item ${i}:`;
        while (prompt.length < 900) prompt += ` ${pool[Math.floor(random() * pool.length)]}`;
        const line = `${JSON.stringify({ key: `k${i}`, prompt })}\n`;
        // A prompt line becomes one user turn (functions/core/requests.ts buildItem), keyed by item id.
        const batchLine = JSON.stringify({
          key: itemIdForIndex(i),
          request: { contents: [{ role: 'user', parts: [{ text: prompt }] }] },
        });
        counted.bytes += Buffer.byteLength(line);
        counted.uploadBytes += Buffer.byteLength(batchLine) + 1;
        piece += line;
      }
      yield piece;
    }
  }
  return { source, counted };
}

export async function benchUpload(options: {
  bytes: number;
  scratch: string;
  profile: boolean;
}): Promise<UploadResult> {
  const dir = join(options.scratch, 'upload');
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'storage'), { recursive: true });
  const storageEmulator = await startStorage(join(dir, 'storage'), PROJECT);
  const standIn = await startStandIn(join(dir, 'gemini'));
  try {
    const storageUrl = storageEmulator.info.url;
    // How the local cloud points the official client at the emulator (infra/local/stack.ts).
    process.env.STORAGE_EMULATOR_HOST = storageUrl;
    const storage = new Storage({ projectId: PROJECT });
    await storage.createBucket(BUCKET);
    const file = storage.bucket(BUCKET).file(OBJECT);

    const set = stagedSet(options.bytes);
    const staging = performance.now();
    await pipeline(
      Readable.from(set.source()),
      file.createWriteStream({ resumable: true, contentType: 'application/jsonl' }),
    );
    const stageSeconds = (performance.now() - staging) / 1000;
    const [metadata] = await file.getMetadata();
    if (Number(metadata.size) !== set.counted.bytes) {
      throw new Error(`the bucket holds ${metadata.size} bytes of ${set.counted.bytes} written`);
    }
    console.error(
      `upload: staged ${set.counted.lines} lines, ${set.counted.bytes} bytes in ${stageSeconds.toFixed(1)} s`,
    );

    const profileDir = options.profile ? join(options.scratch, 'profiles') : undefined;
    if (profileDir) await mkdir(profileDir, { recursive: true });
    const input: UploadChildInput = {
      projectId: PROJECT,
      bucket: BUCKET,
      object: OBJECT,
      ...(metadata.generation !== undefined ? { generation: String(metadata.generation) } : {}),
      lines: set.counted.lines,
      bytes: set.counted.bytes,
      geminiUrl: standIn.info.url,
    };
    const measured = await runMeasured<UploadChildOutput>(
      'test/bench/batch-upload-child.ts',
      input,
      { STORAGE_EMULATOR_HOST: storageUrl },
      profileDir,
    );

    const res = await fetch(`${standIn.info.url}/v1beta/${measured.file}`, {
      headers: { 'x-goog-api-key': 'local' },
    });
    const standInSizeBytes = Number(((await res.json()) as { sizeBytes?: string }).sizeBytes);
    const expectedUploadBytes = set.counted.uploadBytes;
    return {
      ...measured,
      lines: set.counted.lines,
      objectBytes: set.counted.bytes,
      expectedUploadBytes,
      standInSizeBytes,
      verified: standInSizeBytes === expectedUploadBytes && measured.sizeBytes === expectedUploadBytes,
      stageSeconds,
      ...(profileDir ? { profileDir } : {}),
    };
  } finally {
    await standIn.stop();
    await storageEmulator.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
