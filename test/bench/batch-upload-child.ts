import { Storage } from '@google-cloud/storage';
import { createBatchApi } from '../../functions/platform/gemini/batch-api.js';
import { createObjectStore } from '../../functions/platform/object-store.js';
import type { BatchRun } from '../../functions/platform/store/batch-runs.js';
import { byteLengthOf, stagedLines } from '../../functions/tick/batch-api/staged-lines.js';

/**
 * The measured process of the upload benchmark (test/bench/batch-upload.ts starts it): one batch
 * run covering a whole staged object, streamed from the bucket (`STORAGE_EMULATOR_HOST`) through
 * `stagedLines` into `uploadJsonl`, as the tick's Batch API cycle does. Nothing else runs here, so its peak RSS
 * is the production path's (plus Node and the tsx loader). Prints one JSON line on stdout.
 */
export interface UploadChildInput {
  projectId: string;
  bucket: string;
  object: string;
  generation?: string;
  /** Lines and bytes of the staged object. */
  lines: number;
  bytes: number;
  geminiUrl: string;
}

export interface UploadChildOutput {
  file: string;
  sizeBytes: number;
  seconds: number;
  mibPerSecond: number;
  /** Peak resident set of the whole process, MiB. */
  peakRssMiB: number;
  /** Resident set once the modules were loaded and the clients built, before the first byte. */
  startRssMiB: number;
  /** CPU seconds of this process (user + system) during the upload. */
  cpuSeconds: number;
  /** `process.memoryUsage()` in MiB when the sampled RSS was highest (sampled every 50 ms). */
  atPeak: { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
}

const input = JSON.parse(process.argv[2] ?? '{}') as UploadChildInput;
const objects = createObjectStore(new Storage({ projectId: input.projectId }), input.bucket);
const api = createBatchApi({ apiKey: 'local', baseUrl: input.geminiUrl });
const run: BatchRun = {
  id: 'bench-p0',
  jobId: 'bench',
  model: 'gemini-2.5-flash',
  displayName: 'fanout-bench-p0',
  part: 0,
  fromIndex: 0,
  toIndex: input.lines,
  fromByte: 0,
  toByte: input.bytes,
  items: input.lines,
  tokens: 0,
  state: 'staged',
  leaseUntilMs: null,
  fileName: null,
  batchName: null,
  createStartedMs: null,
  createdAtMs: null,
  upstream: null,
  stats: null,
  fallback: null,
  rerouted: 0,
  version: '',
};
const job = {
  staged: { object: input.object, ...(input.generation ? { generation: input.generation } : {}) },
};

const MB = 1024 * 1024;
const startRssMiB = process.memoryUsage().rss / MB;
let atPeak = process.memoryUsage();
const sampler = setInterval(() => {
  const now = process.memoryUsage();
  if (now.rss > atPeak.rss) atPeak = now;
}, 50);
const cpuBefore = process.cpuUsage();
const t0 = performance.now();
// As the tick does: a first pass counts the upload's bytes, declared at upload start.
const sizeBytes = await byteLengthOf(stagedLines(run, job, objects));
const file = await api.uploadJsonl(stagedLines(run, job, objects), {
  displayName: run.displayName,
  sizeBytes,
});
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpuBefore);
clearInterval(sampler);
const mb = (n: number) => Math.round((n / MB) * 10) / 10;
const output: UploadChildOutput = {
  file: file.name,
  sizeBytes: file.sizeBytes,
  seconds,
  mibPerSecond: file.sizeBytes / MB / seconds,
  peakRssMiB: process.resourceUsage().maxRSS / 1024,
  startRssMiB,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  atPeak: {
    rss: mb(atPeak.rss),
    heapTotal: mb(atPeak.heapTotal),
    heapUsed: mb(atPeak.heapUsed),
    external: mb(atPeak.external),
    arrayBuffers: mb(atPeak.arrayBuffers),
  },
};
process.stdout.write(`${JSON.stringify(output)}\n`);
