import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { createJobsClient, type JobsClient } from '../../functions/api/client.js';
import type { JobView } from '../../functions/api/jobs.js';
import { sleep } from '../../functions/api/sleep.js';
import { STRICT_DISPATCH_RAMP, STRICT_QUEUE_RAMP } from '../../infra/local/cloud-tasks/profile.js';
import { standInControl } from '../../infra/local/gemini/control.js';
import { PROJECT_ROOT } from '../../infra/local/stack.js';
import { measureCold } from './cold-case.js';
import { bootStack, type ComparisonStack } from './compare-stack.js';
import { measureFaults, reportFaults } from './faults-case.js';
import { measurePipeline, reportPipeline } from './pipeline-case.js';
import { writeProfiles } from './profiles-file.js';
import { measureTpm } from './tpm-case.js';

/**
 * `npm run bench`: boots the local cloud in a child process (so its logs can be read), then measures
 * - realtime: N prompts at the model's RPM with fixed Gemini latency, against N·60/RPM + latency;
 * - ingest: prompts accepted per second by POST /jobs;
 * - per-item overhead: worker time minus Gemini time, from the worker's `item.succeeded` log lines;
 * - the TPM-bound case (`tpm-case.ts`): 120 prompts of ~1,000 tokens at 90,000 TPM;
 * - the cold-queue case (`cold-case.ts`): 660 prompts at 600 RPM on a queue idle for a minute;
 * - the pipeline case (`pipeline-case.ts`, `BENCH_CASES=pipeline`): three steps on two models;
 * - the transient-fault case (`faults-case.ts`, `BENCH_CASES=faults`): 300 prompts at 1,200 RPM, 20% 503s.
 * `BENCH_CASES` picks cases (`realtime` covers ingest and overhead too; `realtime,tpm` by default).
 * The strict stack's functions plan for its queues' ramp (`queueRamp`) unless `BENCH_RAMP=off`.
 * Prints a table and writes bench/results/realtime.json (and tpm.json, cold.json).
 */
const N = Number(process.env.BENCH_ITEMS ?? 2000);
const RPM = 6000;
const LATENCY_MS = 300;
const INGEST_ITEMS = 10_000;
const INGEST_RUNS = 3;
/** The pause before each ingest run. */
const INGEST_SETTLE_MS = 3000;
/**
 * How often a case polls its job for its end: as scale.ts and the comparison do. Every wall time
 * here runs to the poll that saw the job done, so the poll's interval is the benchmark's own
 * error (a poll a second added 0.5 s on average to a 20 s run, 2.5% of its bound); four reads of
 * the job a second are a small load beside 100 deliveries a second.
 */
const POLL_MS = 250;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const TPM_RUNS = Number(process.env.BENCH_TPM_RUNS ?? RUNS);
const CASES = new Set((process.env.BENCH_CASES ?? 'realtime,tpm').split(','));
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 1);
const FAULT_RUNS = Number(process.env.BENCH_FAULT_RUNS ?? RUNS);
const PIPELINE_RUNS = Number(process.env.BENCH_PIPELINE_RUNS ?? RUNS);
/** DESIGN's targets (median of 5 after a warm-up); a result says whether each was met. */
const TARGETS = { ratio: 1.05, ingestPerSecond: 10_000, overheadP99Ms: 100 };

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

type Profile = 'ideal' | 'strict';

/** The local cloud with `profile`, its log in `.local/bench/`; each item's overhead into `overheads`. */
async function bootBenchStack(
  overheads: number[],
  profile: Profile,
  replans: { count: number } = { count: 0 },
): Promise<ComparisonStack> {
  const scratch = join(PROJECT_ROOT, '.local', 'bench');
  mkdirSync(scratch, { recursive: true });
  const fixture = join(PROJECT_ROOT, 'test', 'fixtures', 'quotas.bench.json');
  // The strict stack's functions know how its queues ramp (a setting: see queueRamp in the README).
  const ramp = profile === 'strict' && process.env.BENCH_RAMP !== 'off';
  const quotasFile = ramp ? join(scratch, 'quotas.strict.json') : fixture;
  if (ramp) {
    const quotas = { ...JSON.parse(readFileSync(fixture, 'utf8')), queueRamp: STRICT_QUEUE_RAMP };
    writeFileSync(quotasFile, `${JSON.stringify(quotas, null, 2)}\n`);
  }
  return bootStack(quotasFile, join(scratch, `stack-${profile}.log`), {
    profile,
    onLine: (line) => {
      if (line.includes('"item.replanned"')) replans.count++;
      if (!line.includes('"item.succeeded"')) return;
      const entry = JSON.parse(line) as { overheadMs?: number };
      if (typeof entry.overheadMs === 'number') overheads.push(entry.overheadMs);
    },
  });
}

/**
 * Both profiles of the local cloud, one after the other, side by side: `strict` (the services'
 * unkind parts: derived bursts, ramp-up, throttling, jitter, Gemini's own token count) is what the
 * product is judged by; `ideal` shows what those cost.
 */
async function main(): Promise<void> {
  const profiles = (process.env.BENCH_PROFILES ?? 'strict,ideal').split(',') as Profile[];
  const results: Record<string, Awaited<ReturnType<typeof measureRealtime>>> = {};
  const tpm: Record<string, Awaited<ReturnType<typeof measureTpm>>> = {};
  const cold: Record<string, Awaited<ReturnType<typeof measureCold>>> = {};
  const pipeline: Record<string, Awaited<ReturnType<typeof measurePipeline>>> = {};
  const faults: Record<string, Awaited<ReturnType<typeof measureFaults>>> = {};
  for (const profile of profiles) {
    const measured = await measure(profile);
    if (measured.faults) faults[profile] = measured.faults;
    if (measured.pipeline) pipeline[profile] = measured.pipeline;
    if (measured.tpm) tpm[profile] = measured.tpm;
    if (measured.cold) cold[profile] = measured.cold;
    if (measured.realtime) results[profile] = measured.realtime;
  }
  const dir = resolve(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  if (Object.keys(tpm).length > 0) {
    writeProfiles(join(dir, 'tpm.json'), tpm);
    console.table(
      Object.fromEntries(
        Object.entries(tpm).map(([p, r]) => [
          p,
          {
            'TPM-bound ratio (median)': r.medianRatio,
            runs: r.runs.map((x) => x.ratio).join(' '),
            '429s': r.runs.reduce((a, x) => a + x.rejected429, 0),
            'peak tokens/60 s': Math.max(...r.runs.map((x) => x.peakTokens)),
          },
        ]),
      ),
    );
    console.log('written: bench/results/tpm.json');
  }
  if (Object.keys(cold).length > 0) {
    const ramp = process.env.BENCH_RAMP === 'off' ? 'off' : 'on';
    // The planner's ramp setting applies to the strict profile's runs: each profile keeps its own.
    writeProfiles(
      join(dir, 'cold.json'),
      Object.fromEntries(Object.entries(cold).map(([p, r]) => [p, { ...r, ramp }])),
    );
    console.table(
      Object.fromEntries(
        Object.entries(cold).map(([p, r]) => [
          p,
          {
            'cold ratio (median)': r.medianRatio,
            runs: r.runs.map((x) => x.ratio).join(' '),
            'first result (ms)': r.runs.map((x) => x.firstResultMs).join(' '),
            replanned: r.runs.map((x) => x.replanned).join(' '),
            '429s': r.runs.reduce((a, x) => a + x.rejected429, 0),
          },
        ]),
      ),
    );
    console.log('written: bench/results/cold.json');
  }
  if (Object.keys(pipeline).length > 0) reportPipeline(dir, pipeline);
  if (Object.keys(faults).length > 0) reportFaults(dir, faults);
  if (Object.keys(results).length === 0) return;
  writeProfiles(join(dir, 'realtime.json'), results);
  console.table(
    Object.fromEntries(
      Object.entries(results).map(([p, r]) => [
        p,
        {
          'ratio (median)': r.realtime.medianRatioToIdeal,
          runs: r.realtime.runs.map((x) => x.ratio).join(' '),
          '429s': r.realtime.runs.reduce((a, x) => a + x.rejected429, 0),
          'peak/60 s': Math.max(...r.realtime.runs.map((x) => x.peak)),
          'ingest/s': r.ingest.promptsPerSecondMedian,
          'overhead p99 ms': r.overheadMs.p99,
        },
      ]),
    ),
  );
  console.log(`written: bench/results/realtime.json (profiles: ${profiles.join(', ')})`);
}

/** The cases `BENCH_CASES` picks, on one stack of `profile`. */
async function measure(profile: Profile) {
  const overheads: number[] = [];
  const replans = { count: 0 };
  const stack = await bootBenchStack(overheads, profile, replans);
  const jobs = createJobsClient(stack.info.ingestUrl);
  try {
    const standIn = standInControl(stack.info.geminiBaseUrl);
    await standIn.configure({ latency: { '*': LATENCY_MS } });
    const tpm = CASES.has('tpm')
      ? await measureTpm(jobs, standIn, {
          runs: TPM_RUNS,
          latencyMs: LATENCY_MS,
          waitDone: (id) => waitDone(jobs, id, 600_000),
        })
      : undefined;
    const cold = CASES.has('cold')
      ? await measureCold(jobs, standIn, {
          runs: COLD_RUNS,
          latencyMs: LATENCY_MS,
          replans: () => replans.count,
          waitDone: (id) => waitDone(jobs, id, 600_000),
        })
      : undefined;
    const pipeline = CASES.has('pipeline')
      ? await measurePipeline(jobs, standIn, {
          runs: PIPELINE_RUNS,
          latencyMs: LATENCY_MS,
          ...(profile === 'strict' ? { ramp: STRICT_DISPATCH_RAMP } : {}),
          waitDone: (id) => waitDone(jobs, id, 600_000),
        })
      : undefined;
    const faults = CASES.has('faults')
      ? await measureFaults(jobs, standIn, {
          runs: FAULT_RUNS,
          latencyMs: LATENCY_MS,
          waitDone: (id) => waitDone(jobs, id, 600_000),
        })
      : undefined;
    const realtime = CASES.has('realtime')
      ? await measureRealtime(profile, jobs, standIn, overheads)
      : undefined;
    return { tpm, cold, pipeline, faults, realtime };
  } finally {
    await stack.stop();
  }
}

async function measureRealtime(
  profile: Profile,
  jobs: JobsClient,
  standIn: ReturnType<typeof standInControl>,
  overheads: number[],
) {
  // Warm up connections and code paths with one run of full size (the emulators' JVM and V8 need
  // thousands of requests before they run at speed), then forget what that measured.
  const warm = await jobs.submit({
    model: 'gemini-bench',
    mode: 'realtime',
    prompts: Array.from({ length: N }, (_, i) => `warm ${i}`),
  });
  await waitDone(jobs, warm.id, 300_000);
  overheads.length = 0;

  // Realtime at the quota's edge: RUNS runs, the median reported (a 2-core machine is noisy).
  const runs: Array<{
    wallMs: number;
    ratio: number;
    peak: number;
    rejected429: number;
    calls: number;
    succeeded: number;
  }> = [];
  const idealMs = (N * 60_000) / RPM + LATENCY_MS;
  for (let run = 0; run < RUNS; run++) {
    await standIn.reset();
    await sleep(2000);
    const prompts = Array.from(
      { length: N },
      (_, i) => `Benchmark run ${run} prompt ${i}: say something short.`,
    );
    const t0 = Date.now();
    const job = await jobs.submit({ model: 'gemini-bench', mode: 'realtime', prompts });
    const done = await waitDone(jobs, job.id, 300_000);
    const wallMs = Date.now() - t0;
    const stats = await standIn.stats();
    const model = stats.models['gemini-bench']!;
    runs.push({
      wallMs,
      ratio: Math.round((wallMs / idealMs) * 1000) / 1000,
      peak: model.peakRequestsPer60s,
      rejected429: model.rejected429,
      calls: model.admitted,
      succeeded: done.counts.succeeded,
    });
  }
  const median = [...runs].sort((a, b) => a.ratio - b.ratio)[Math.floor(runs.length / 2)]!;
  const sorted = [...overheads].sort((a, b) => a - b);

  // Ingest: time to a durable 202 for 10,000 prompts (the bench model's queue barely dispatches).
  const ingestRates: number[] = [];
  for (let run = 0; run < INGEST_RUNS; run++) {
    // A quiet start: the last run's finish (or the last ingest's cancel, a sweep of 10,000 items)
    // must not be measured as ingest.
    await sleep(INGEST_SETTLE_MS);
    const body = {
      model: 'gemini-bench-ingest',
      mode: 'realtime' as const,
      prompts: Array.from({ length: INGEST_ITEMS }, (_, i) => `ingest ${run} ${i}`),
    };
    const s = performance.now();
    const created = await jobs.submit(body);
    ingestRates.push(INGEST_ITEMS / ((performance.now() - s) / 1000));
    await jobs.cancel(created.id);
  }
  ingestRates.sort((a, b) => a - b);

  const result = {
    machine: `${process.platform} ${process.arch}, node ${process.version}`,
    profile,
    realtime: {
      items: N,
      rpm: RPM,
      latencyMs: LATENCY_MS,
      idealMs,
      medianWallMs: median.wallMs,
      medianRatioToIdeal: median.ratio,
      target: `≤ ${TARGETS.ratio}`,
      met: median.ratio <= TARGETS.ratio,
      runs,
    },
    ingest: {
      itemsPerRequest: INGEST_ITEMS,
      runs: INGEST_RUNS,
      promptsPerSecondMedian: Math.round(percentile(ingestRates, 50)),
      promptsPerSecondMin: Math.round(ingestRates[0]!),
      target: `≥ ${TARGETS.ingestPerSecond}`,
      met: percentile(ingestRates, 50) >= TARGETS.ingestPerSecond,
    },
    overheadMs: {
      samples: sorted.length,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      target: `p99 ≤ ${TARGETS.overheadP99Ms}`,
      met: percentile(sorted, 99) <= TARGETS.overheadP99Ms,
    },
    // What else ran on the machine: a shared 2-core machine's numbers depend on it.
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
  console.log(`profile ${profile}:`);
  console.table({
    'realtime wall, median (s)': {
      value: median.wallMs / 1000,
      target: `≤ ${((idealMs * TARGETS.ratio) / 1000).toFixed(2)}`,
    },
    'ratio to N·60/RPM + latency': { value: median.ratio, target: `≤ ${TARGETS.ratio}` },
    'ratios of the runs': { value: runs.map((r) => r.ratio).join(' '), target: '' },
    'peak requests in any 60 s': { value: Math.max(...runs.map((r) => r.peak)), target: `≤ ${RPM}` },
    '429s from Gemini': { value: runs.reduce((a, r) => a + r.rejected429, 0), target: '0' },
    'Gemini calls per item': { value: runs.reduce((a, r) => a + r.calls, 0) / (N * RUNS), target: '1' },
    'ingest prompts/s (median)': {
      value: result.ingest.promptsPerSecondMedian,
      target: `≥ ${TARGETS.ingestPerSecond}`,
    },
    'per-item overhead p50 (ms)': { value: result.overheadMs.p50, target: '' },
    'per-item overhead p99 (ms)': { value: result.overheadMs.p99, target: `≤ ${TARGETS.overheadP99Ms}` },
  });
  return result;
}

function waitDone(jobs: JobsClient, id: string, timeoutMs: number): Promise<JobView> {
  return jobs.waitFor(id, { timeoutMs, intervalMs: POLL_MS });
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
