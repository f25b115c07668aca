import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { PROJECT_ROOT } from '../../infra/local/stack.js';
import { benchCollect, type CollectResult } from './batch-collect.js';
import { benchUpload, type UploadResult } from './batch-upload.js';

/**
 * `npm run bench:batch` (and the second half of `npm run bench`): the Batch API targets of DESIGN
 * "Performance", through the local cloud, the median of BENCH_BATCH_RUNS runs (default 5) of each:
 * - upload: a 1 GB staged JSONL streamed from the bucket into a Files API upload, peak RSS ≤ 256 MB;
 * - collect: 100,000 batch results collected and written in ≤ 60 s.
 * Prints a table and writes bench/results/batch.json (a run of a smaller size, or of one benchmark
 * only, writes .local/bench-batch/batch.json instead). Memory is in MiB (2^20 bytes).
 *
 * Knobs: BENCH_UPLOAD_BYTES (default 1,000,000,000), BENCH_COLLECT_ITEMS (default 100,000),
 * BENCH_ONLY=upload|collect, BENCH_CPU_PROF=1 (a .cpuprofile of the upload child under .local/).
 * Scratch data (emulator disks, about twice the upload size) goes under .local/bench-batch/ and is
 * removed afterwards.
 */
const UPLOAD_BYTES = Number(process.env.BENCH_UPLOAD_BYTES ?? 1_000_000_000);
const COLLECT_ITEMS = Number(process.env.BENCH_COLLECT_ITEMS ?? 100_000);
const ONLY = process.env.BENCH_ONLY;
const RSS_TARGET_MB = 256;
const COLLECT_TARGET_S = 60;
const FULL_UPLOAD_BYTES = 1_000_000_000;
const FULL_COLLECT_ITEMS = 100_000;

/** Runs of each part; the table and the record give the median run (BENCH_BATCH_RUNS, default 5). */
const RUNS = Number(process.env.BENCH_BATCH_RUNS ?? 5);

/** The median run by `measure`, or the first run that failed `ok` (so a failure is never outvoted). */
function medianBy<T>(runs: T[], measure: (r: T) => number, ok: (r: T) => boolean): T | undefined {
  const failed = runs.find((r) => !ok(r));
  if (failed) return failed;
  return [...runs].sort((a, b) => measure(a) - measure(b))[Math.floor(runs.length / 2)];
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const verdict = (pass: boolean, full: boolean) => `${pass ? 'pass' : 'FAIL'}${full ? '' : ' (small run)'}`;

async function main(): Promise<void> {
  // As the local cloud does (infra/local/stack.ts): no Google metadata server to look for offline.
  process.env.METADATA_SERVER_DETECTION = 'none';
  const scratch = resolve(PROJECT_ROOT, '.local', 'bench-batch');
  // The machine may be shared (tests running beside the bench): its load is part of the record.
  const loadAtStart = loadavg()[0]!;
  const uploads: UploadResult[] = [];
  const collects: CollectResult[] = [];
  for (let run = 0; run < RUNS; run++) {
    if (ONLY !== 'collect') {
      uploads.push(
        await benchUpload({ bytes: UPLOAD_BYTES, scratch, profile: process.env.BENCH_CPU_PROF === '1' }),
      );
    }
    if (ONLY !== 'upload') collects.push(await benchCollect({ items: COLLECT_ITEMS, scratch }));
  }
  // Each part's median run by its target's measure; a run that failed its check is reported, not hidden.
  const upload = medianBy(
    uploads,
    (u) => u.peakRssMiB,
    (u) => u.verified,
  );
  const collect = medianBy(
    collects,
    (c) => c.collectSeconds,
    (c) => c.verified,
  );

  const table: Record<string, { target: string; measured: string | number; result: string }> = {};
  if (upload) {
    const full = upload.objectBytes >= FULL_UPLOAD_BYTES;
    table['upload: peak RSS (MiB)'] = {
      target: `≤ ${RSS_TARGET_MB}`,
      measured: round(upload.peakRssMiB),
      result: verdict(upload.peakRssMiB <= RSS_TARGET_MB, full),
    };
    table['upload: throughput of the upload (MiB/s)'] = {
      target: '',
      measured: round(upload.mibPerSecond),
      result: '',
    };
    table['upload: time (s)'] = { target: '', measured: round(upload.seconds), result: '' };
    table['upload: object read (MiB) / lines'] = {
      target: '',
      measured: `${round(upload.objectBytes / 2 ** 20)} / ${upload.lines}`,
      result: '',
    };
    table['upload: file size = expected bytes'] = {
      target: String(upload.expectedUploadBytes),
      measured: upload.standInSizeBytes,
      result: upload.verified ? 'pass' : 'FAIL',
    };
    table['upload: RSS before the first byte (MiB)'] = {
      target: '',
      measured: round(upload.startRssMiB),
      result: '',
    };
    table['setup: staging the object (s)'] = { target: '', measured: round(upload.stageSeconds), result: '' };
  }
  if (collect) {
    const full = collect.items >= FULL_COLLECT_ITEMS;
    table[`collect: ${collect.items} results (s)`] = {
      target: `≤ ${COLLECT_TARGET_S}`,
      measured: round(collect.collectSeconds),
      result: verdict(collect.collectSeconds <= COLLECT_TARGET_S && collect.verified, full),
    };
    table['collect: items/s'] = { target: '', measured: Math.round(collect.itemsPerSecond), result: '' };
    table['collect: succeeded / failed / pending'] = {
      target: `${collect.items - collect.errorLines} / ${collect.errorLines} / 0`,
      measured: `${collect.counts.succeeded} / ${collect.counts.failed} / ${collect.counts.pending}`,
      result: collect.verified ? 'pass' : 'FAIL',
    };
    table['collect: downloads closed after their last byte'] = {
      target: '',
      measured: collect.lateCloses,
      result: '',
    };
    table['results read in order (s)'] = {
      target: '',
      measured: `${round(collect.resultsSeconds)} (${collect.resultLines} lines)`,
      result: '',
    };
    table['setup: job + items stored (s)'] = {
      target: '',
      measured: round(collect.createSeconds),
      result: '',
    };
    table['setup: responses file uploaded (s)'] = {
      target: '',
      measured: round(collect.responsesUploadSeconds),
      result: '',
    };
  }
  console.table(table);

  // Only a full-size run of both is the record; trial runs leave bench/results alone.
  const complete =
    upload !== undefined &&
    collect !== undefined &&
    upload.objectBytes >= FULL_UPLOAD_BYTES &&
    collect.items >= FULL_COLLECT_ITEMS;
  const dir = complete ? resolve(PROJECT_ROOT, 'bench', 'results') : scratch;
  mkdirSync(dir, { recursive: true });
  const result = {
    date: new Date().toISOString(),
    machine: {
      platform: `${process.platform} ${process.arch}`,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: round(totalmem() / 2 ** 30),
      node: process.version,
      loadAverage1m: { atStart: round(loadAtStart, 2), atEnd: round(loadavg()[0]!, 2) },
    },
    runs: RUNS,
    ...(uploads.length > 1
      ? {
          uploadRuns: uploads.map((u) => ({
            peakRssMiB: round(u.peakRssMiB),
            seconds: round(u.seconds),
            mibPerSecond: round(u.mibPerSecond),
            verified: u.verified,
          })),
        }
      : {}),
    ...(collects.length > 1
      ? {
          collectRuns: collects.map((c) => ({
            collectSeconds: round(c.collectSeconds),
            itemsPerSecond: Math.round(c.itemsPerSecond),
            verified: c.verified,
          })),
        }
      : {}),
    ...(upload
      ? {
          upload: {
            target: `peak RSS ≤ ${RSS_TARGET_MB} MiB`,
            pass: upload.peakRssMiB <= RSS_TARGET_MB && upload.verified,
            ...upload,
          },
        }
      : {}),
    ...(collect
      ? {
          collect: {
            target: `≤ ${COLLECT_TARGET_S} s`,
            pass: collect.collectSeconds <= COLLECT_TARGET_S && collect.verified,
            ...collect,
          },
        }
      : {}),
  };
  writeFileSync(join(dir, 'batch.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`written: ${join(dir, 'batch.json')}`);
  if ((upload && !upload.verified) || (collect && !collect.verified)) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
