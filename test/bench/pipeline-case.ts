import { join } from 'node:path';
import type { JobsClient } from '../../functions/api/client.js';
import type { CreateJobRequest, JobView, PipelineFields } from '../../functions/api/jobs.js';
import type { StandInControl } from '../../infra/local/gemini/control.js';
import { writeProfiles } from './profiles-file.js';

/**
 * The pipeline case of `npm run bench` (issue 20): a three-step pipeline over N items on two models
 * with different quotas: `extract` and `check` on model A (1,200 RPM), `answer` on model B (500 RPM).
 * Each (item, step) is a unit at its own model's quota, and step n+1 of an item starts when its
 * step n ends, so both models work at once and the makespan's bound is the slowest model's share of
 * the work at its quota, plus one latency per step (the first unit of each step waits for the one
 * before it): max over models of units·60/RPM, + 3 × latency. Here A has 2N units at 1,200 RPM
 * (N/10 s) and B has N at 500 RPM (N·0.12 s): B bounds it. Target ≤ 1.15× the bound, with zero
 * 429s on both models and each model's peak minute within its RPM.
 *
 * It needs the pipeline engine (a job's `steps`); until then ingest refuses the body (400) and the
 * case fails at its first submit, saying so.
 */
export const PIPELINE_CASE = {
  items: Number(process.env.BENCH_PIPELINE_ITEMS ?? 600),
  models: { a: { name: 'gemini-bench-pipe-a', rpm: 1200 }, b: { name: 'gemini-bench-pipe-b', rpm: 500 } },
};

/** Issue 20's target for the three-step pipeline. */
export const PIPELINE_TARGET = 1.15;

const { a, b } = PIPELINE_CASE.models;
const STEPS: PipelineFields['steps'] = [
  { name: 'extract', model: a.name, prompt: 'Extract the facts of: {{input}}' },
  { name: 'answer', model: b.name, prompt: 'Answer from these facts: {{extract}}' },
  { name: 'check', model: a.name, prompt: 'Is this answer right? {{answer}}' },
];

/** Units per model (items × the steps on it) and the bound: the slowest model's share, + a latency a step. */
export function pipelineBoundMs(items: number, latencyMs: number): number {
  const units = (model: string) => items * (STEPS ?? []).filter((s) => s.model === model).length;
  const shareMs = Math.max(...[a, b].map((m) => (units(m.name) * 60_000) / m.rpm));
  return shareMs + (STEPS ?? []).length * latencyMs;
}

interface PipelineRun {
  wallMs: number;
  ratio: number;
  rejected429: Record<string, number>;
  peakPer60s: Record<string, number>;
  calls: Record<string, number>;
  /** When model B (step 2) got its first request, from the job's start: early means items stream. */
  secondStepStartsMs: number;
  /** Model B's admitted requests in each of the run's first 40 seconds: the fill, and any ramp. */
  bFirst40s: number[];
  succeeded: number;
}

/**
 * What a cold queue costs the run on a profile whose queues ramp (`STRICT_DISPATCH_RAMP`): model B
 * is busy from its first unit on, so it loses the part of its rate the ramp holds back, ramp
 * seconds × (1 − start share) / 2. The cold run is also reported against the bound plus that.
 */
export function rampCostMs(ramp: { startShare: number; durationMs: number } | undefined): number {
  return ramp ? (ramp.durationMs * (1 - ramp.startShare)) / 2 : 0;
}

/**
 * One cold run (the stack's queues never dispatched, as after a minute idle), then `runs` warm ones,
 * each two seconds after the last (the stand-in's minute windows reset, as in the realtime case),
 * so both queues have dispatched within the minute and their ramp, if any, is over. The target is
 * judged on the warm median, as the realtime case's; the cold run says what a cold start adds.
 */
export async function measurePipeline(
  jobs: JobsClient,
  standIn: StandInControl,
  options: {
    runs: number;
    latencyMs: number;
    ramp?: { startShare: number; durationMs: number };
    waitDone: (id: string) => Promise<JobView>;
  },
) {
  const { items } = PIPELINE_CASE;
  const boundMs = pipelineBoundMs(items, options.latencyMs);
  const runs: PipelineRun[] = [];
  for (let run = 0; run <= options.runs; run++) {
    await standIn.reset();
    if (run > 0) await new Promise((r) => setTimeout(r, 2000));
    const body: CreateJobRequest & PipelineFields = {
      model: a.name,
      mode: 'realtime',
      prompts: Array.from({ length: items }, (_, i) => `Pipeline run ${run} item ${i}: a short fact.`),
      steps: STEPS,
    };
    const t0 = Date.now();
    const job = await jobs.submit(body).catch((err: unknown) => {
      throw new Error(`the pipeline case needs the pipeline engine (a job's steps): ${String(err)}`);
    });
    const done = await options.waitDone(job.id);
    const wallMs = Date.now() - t0;
    const stats = (await standIn.stats()).models;
    const of = (m: string) => stats[m]!;
    const perSecond = of(b.name).requestsPerSecond;
    const seconds = perSecond.map((x) => x.second);
    const firstB = seconds.length > 0 ? Math.min(...seconds) : undefined;
    const startSec = Math.floor(t0 / 1000);
    const bFirst40s = Array.from({ length: 40 }, (_, k) =>
      perSecond.filter((x) => x.second === startSec + k).reduce((n, x) => n + x.count, 0),
    );
    runs.push({
      wallMs,
      ratio: Math.round((wallMs / boundMs) * 1000) / 1000,
      rejected429: { [a.name]: of(a.name).rejected429, [b.name]: of(b.name).rejected429 },
      peakPer60s: { [a.name]: of(a.name).peakAdmittedPer60s, [b.name]: of(b.name).peakAdmittedPer60s },
      calls: { [a.name]: of(a.name).admitted, [b.name]: of(b.name).admitted },
      secondStepStartsMs: firstB === undefined ? Number.NaN : firstB * 1000 - t0,
      bFirst40s,
      succeeded: done.counts.succeeded,
    });
  }
  const [cold, ...warm] = runs;
  const median = [...warm].sort((x, y) => x.ratio - y.ratio)[Math.floor(warm.length / 2)]!;
  const rampMs = rampCostMs(options.ramp);
  return {
    ...PIPELINE_CASE,
    steps: STEPS,
    latencyMs: options.latencyMs,
    boundMs,
    medianRatio: median.ratio,
    target: `≤ ${PIPELINE_TARGET}`,
    met:
      median.ratio <= PIPELINE_TARGET &&
      runs.every((r) => Object.values(r.rejected429).every((n) => n === 0)),
    runs: warm,
    cold: {
      ...cold!,
      rampCostMs: rampMs,
      ratioToBoundWithRamp: Math.round((cold!.wallMs / (boundMs + rampMs)) * 1000) / 1000,
    },
  };
}

/** Writes `bench/results/pipeline.json` and prints the table, one row per profile. */
export function reportPipeline(
  dir: string,
  results: Record<string, Awaited<ReturnType<typeof measurePipeline>>>,
) {
  writeProfiles(join(dir, 'pipeline.json'), results);
  console.table(
    Object.fromEntries(
      Object.entries(results).map(([p, r]) => [
        p,
        {
          'pipeline ratio (warm median)': r.medianRatio,
          runs: r.runs.map((x) => x.ratio).join(' '),
          cold: r.cold.ratio,
          'cold / (bound + ramp)': r.cold.ratioToBoundWithRamp,
          'bound (s)': Math.round(r.boundMs) / 1000,
          '429s': [...r.runs, r.cold].reduce(
            (n, x) => n + Object.values(x.rejected429).reduce((s, v) => s + v, 0),
            0,
          ),
          'step 2 starts (s)': r.runs.map((x) => Math.round(x.secondStepStartsMs / 100) / 10).join(' '),
        },
      ]),
    ),
  );
  console.log('written: bench/results/pipeline.json');
}
