import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import { makePrompts } from '../../bench/contenders/prompts.js';
import { createJobsClient, type JobsClient } from '../../functions/api/client.js';
import { sleep } from '../../functions/api/sleep.js';
import { queueConcurrency } from '../../functions/core/queue-concurrency.js';
import { itemsPerTaskFor, queueRateLimits } from '../../functions/core/queue-rate.js';
import { readQuotas } from '../../functions/platform/config.js';
import { standInControl } from '../../infra/local/gemini/control.js';
import type { StandInStats } from '../../infra/local/gemini/stats.js';
import { type TokenRule, textTokens } from '../../infra/local/gemini/tokens.js';
import { PROJECT_ROOT } from '../../infra/local/stack.js';
import { runFanout } from './compare-runs.js';
import { capSeconds, limitSeconds } from './compare-settings.js';
import { benchFolders, bootStack, resultsHead } from './compare-stack.js';
import { startSampler } from './scale-procs.js';
import {
  cellMedians,
  dispatchSeries,
  progressLine,
  round,
  type ScaleMeasure,
  type ScaleRun,
  scaleChartSvg,
  table,
} from './scale-report.js';
import {
  readScaleSettings,
  type ScaleSettings,
  scaleQuotas,
  sharedModelOf,
  singleModelOf,
  WARM_UP_MODEL,
} from './scale-settings.js';

/**
 * How the cost grows (issue 11): makespan and memory of the functions
 * (a) for N = 100, 1,000, 10,000 and 50,000 prompts on one model, one job at a time, and
 * (b) for several models sharing the system at once, each at its own quota (4 × 5,000 prompts).
 *
 * One local cloud in a child process (strict profile; `SCALE_PROFILE=ideal`), as the comparison boots it; every job on a
 * model of its own through the jobs API in mode realtime. Per measurement: makespan from submit to
 * the last result read, the quota's limit N·60/RPM + latency and the ratio, 429s the stand-in sent,
 * prompts lost, results in input order, the resident memory of the functions host and its
 * instances (sampled from /proc: peak sum and peak of the largest instance), and CPU seconds of
 * the functions and of the emulators around them. Prints the tables, writes scale.json and
 * scale.svg.
 *
 * `npx tsx test/bench/scale.ts`; settings in scale-settings.ts (e.g. `SCALE_N=100,1000
 * SCALE_SHARED_N=500` for a quick run). Only a run with every default writes bench/results/.
 */
interface Context {
  settings: ScaleSettings;
  jobs: JobsClient;
  geminiBaseUrl: string;
  functionsPid: number;
  rule: TokenRule;
  headroom: number;
  /** The local cloud's Firestore, to forget each run's jobs before the next run. */
  db: Firestore;
}

interface JobSpec {
  model: string;
  rpm: number;
  prompts: string[];
}

const log = (line: string) => process.stderr.write(`${line}\n`);

function limitOf(ctx: Context, spec: JobSpec): number {
  const tokens = spec.prompts.reduce((sum, p) => sum + textTokens(p, ctx.rule), 0);
  const { settings } = ctx;
  return limitSeconds(
    { rpm: spec.rpm, tpm: settings.tpm, latencyMs: settings.latencyMs },
    spec.prompts.length,
    tokens,
  ).limitS;
}

function recordRun(
  ctx: Context,
  spec: JobSpec,
  outcome: Awaited<ReturnType<typeof runFanout>>,
  stats: StandInStats,
  submitEpochMs: number,
): ScaleRun {
  const limitS = limitOf(ctx, spec);
  const upstream = stats.models[spec.model];
  const { job } = outcome;
  // Items a second: with k items a task, the queue's rate counts tasks of k.
  const k = itemsPerTaskFor({ rpm: spec.rpm }, ctx.headroom, ctx.settings.itemsPerTask);
  const planned = k * queueRateLimits({ rpm: spec.rpm }, ctx.headroom, k).maxDispatchesPerSecond;
  return {
    model: spec.model,
    n: spec.prompts.length,
    rpm: spec.rpm,
    finished: outcome.finished,
    makespanS: round(outcome.wallS, 2),
    limitS: round(limitS, 2),
    ratio: round(outcome.wallS / limitS, 3),
    capS: outcome.capS,
    succeeded: outcome.done,
    lost: outcome.lost,
    inOrder: outcome.inOrder,
    serverS:
      job.finishedAt !== null
        ? round((Date.parse(job.finishedAt) - Date.parse(job.createdAt)) / 1000, 2)
        : null,
    upstream: {
      requests: upstream?.requests ?? 0,
      admitted: upstream?.admitted ?? 0,
      rejected429: upstream?.rejected429 ?? 0,
      peakAdmittedPer60s: upstream?.peakAdmittedPer60s ?? 0,
      answeredAgain: upstream?.answeredAgain ?? 0,
    },
    dispatch: dispatchSeries(upstream?.requestsPerSecond ?? [], submitEpochMs, planned),
    costUsd: outcome.costUsd ?? null,
    ...(outcome.error ? { error: outcome.error } : {}),
  };
}

/**
 * Submits every job of `specs` at once and waits for them all, sampling the processes meanwhile.
 * Each job is stopped at its own cap (see compare-settings.ts) and then reported as capped.
 */
async function measure(
  ctx: Context,
  part: ScaleMeasure['part'],
  label: string,
  specs: JobSpec[],
  repeat: { run: number; of: number } = { run: 0, of: 1 },
): Promise<ScaleMeasure> {
  const { settings } = ctx;
  // A repeat runs on the same models: their minute (the ledger's and the stand-in's) clears first.
  const settleS = repeat.run > 0 ? Math.max(settings.settleS, settings.repeatSettleS) : settings.settleS;
  if (settleS > 0) await sleep(settleS * 1000);
  const loadAtStart = round(loadavg()[0]!);
  const sampler = startSampler(ctx.functionsPid, settings.sampleMs);
  const submitEpochMs = Date.now();
  const started = performance.now();
  let outcomes: Array<Awaited<ReturnType<typeof runFanout>>>;
  try {
    outcomes = await Promise.all(
      specs.map((spec) =>
        runFanout({
          jobs: ctx.jobs,
          geminiBaseUrl: ctx.geminiBaseUrl,
          functionsPid: ctx.functionsPid,
          model: spec.model,
          prompts: spec.prompts,
          mode: 'realtime',
          capS: capSeconds(settings, limitOf(ctx, spec)),
        }),
      ),
    );
  } catch (err) {
    sampler.stop();
    throw err;
  }
  const procs = sampler.stop();
  const wallS = (performance.now() - started) / 1000;
  const stats = await standInControl(ctx.geminiBaseUrl).stats();
  const runs = specs.map((spec, i) => recordRun(ctx, spec, outcomes[i]!, stats, submitEpochMs));
  await forgetJobs(
    ctx,
    outcomes.map((o) => o.job.id),
  );
  const limitS = Math.max(...runs.map((r) => r.limitS));
  // One job: its own makespan (submit to last result read); several: until the last one's end.
  const makespanS = runs.length === 1 ? runs[0]!.makespanS : round(wallS, 2);
  return {
    part,
    label: repeat.of > 1 ? `${label} (run ${repeat.run + 1} of ${repeat.of})` : label,
    cell: label,
    n: runs.reduce((sum, r) => sum + r.n, 0),
    makespanS,
    limitS,
    ratio: round(makespanS / limitS, 3),
    runs,
    procs,
    loadAtStart,
  };
}

/**
 * Deletes the measured jobs (their items and counters with them) once their figures are taken. The
 * Firestore emulator keeps every document in memory and slows as it fills (five runs of 50,000
 * prompts left 270,000 items in a 6.5 GB JVM, the later runs the slowest), where production
 * Firestore does not: each run starts on an emulator that holds no earlier run's items.
 */
async function forgetJobs(ctx: Context, jobIds: string[]): Promise<void> {
  const started = performance.now();
  for (const id of jobIds) {
    const writer = ctx.db.bulkWriter({ throttling: false });
    await ctx.db.recursiveDelete(ctx.db.collection('jobs').doc(id), writer);
    await writer.close();
  }
  log(
    `  deleted ${jobIds.length} measured job(s) from the emulator in ${Math.round(performance.now() - started)} ms`,
  );
}

async function main(): Promise<void> {
  const settings = readScaleSettings(process.env);
  const { scratch, outDir, quotasFile } = benchFolders('scale', settings.isDefault, scaleQuotas(settings));

  const started = performance.now();
  const loadAtStart = round(loadavg()[0]!);
  log(`booting the local cloud (${settings.profile} profile); its logs go to .local/scale/stack.log`);
  const stack = await bootStack(quotasFile, join(scratch, 'stack.log'), {
    profile: settings.profile,
    env: { FANOUT_WORKER_CONCURRENCY: String(settings.workerConcurrency) },
    tickEveryMs: settings.tickEveryMs,
  });
  const measures: ScaleMeasure[] = [];
  // The emulator's variable, as every client here is pointed at it (no credentials looked up).
  process.env.FIRESTORE_EMULATOR_HOST = stack.info.firestoreEmulatorHost;
  const db = new Firestore({ projectId: stack.info.projectId });
  try {
    const { geminiBaseUrl, functionsPid } = stack.info;
    await standInControl(geminiBaseUrl).configure({ latency: { '*': settings.latencyMs } });
    const ctx: Context = {
      settings,
      jobs: createJobsClient(stack.info.ingestUrl),
      geminiBaseUrl,
      functionsPid,
      rule: (await standInControl(geminiBaseUrl).config()).tokens as TokenRule,
      headroom: readQuotas(quotasFile).headroom,
      db,
    };
    if (settings.warmUp > 0) {
      log(`warm-up: one job of ${settings.warmUp} prompts on a model of its own (not measured)`);
      await runFanout({
        jobs: ctx.jobs,
        geminiBaseUrl,
        functionsPid,
        model: WARM_UP_MODEL,
        prompts: makePrompts(settings.warmUp, settings.promptChars).map((p) => `warm-up ${p}`),
        mode: 'realtime',
        capS: 300,
      });
    }
    const largest = Math.max(...settings.ns);
    for (const n of settings.ns) {
      const spec = {
        model: singleModelOf(n),
        rpm: settings.rpm,
        prompts: makePrompts(n, settings.promptChars),
      };
      const of = n === largest ? settings.repeats : 1;
      for (let run = 0; run < of; run++) {
        const m = await measure(ctx, 'single', `N = ${n.toLocaleString('en-US')}`, [spec], { run, of });
        measures.push(m);
        log(progressLine(m));
      }
    }
    if (settings.shared) {
      const { models, n, rpm } = settings.shared;
      const specs = Array.from({ length: models }, (_, i) => ({
        model: sharedModelOf(i + 1),
        rpm,
        prompts: makePrompts(n, settings.promptChars),
      }));
      const label = `${models} models × ${n.toLocaleString('en-US')} at once`;
      for (let run = 0; run < settings.repeats; run++) {
        const m = await measure(ctx, 'shared', label, specs, { run, of: settings.repeats });
        measures.push(m);
        log(progressLine(m));
      }
    }
  } finally {
    await db.terminate();
    await stack.stop();
  }

  const head = resultsHead(started, loadAtStart);
  // The chart shows each cell's median run; the JSON and the table keep every run.
  const medians = cellMedians(measures);
  const jsonFile = join(outDir, 'scale.json');
  const out = {
    ...head,
    settings,
    notes: [
      'makespan: submit to the last result read (several jobs: the first submit to the last one read); limit: N·60/RPM + latency (every run is RPM-bound).',
      'memory: VmRSS of the functions host (cluster primary) and every descendant (instances, tsx helpers), sampled from /proc every sampleMs; peakTreeRssMb is the highest sum in one sample, peakInstanceRssMb the highest single instance.',
      "cpuS: the run's CPU seconds of the functions tree, of the stack process alone (Cloud Tasks and Storage emulators and the Gemini stand-in share its event loop), of the Firestore emulator (JVM) and of this benchmark; machineBusyShare counts every process on the machine.",
      "dispatch: requests per second the stand-in received for the model (perSecond from its first request at or after the run's submit); plannedPerS is the queue rate the product sizes from RPM and headroom, in items (k items a task: k times the tasks).",
      "The runs share one local cloud, one after the other, in the order listed: memory a run leaves behind is the next one's start (rssBeforeMb). Each run's jobs are deleted from the Firestore emulator once measured, so no run meets an emulator filled by the ones before it.",
      'queueConcurrency: the concurrent dispatches each queue was given (core/queue-concurrency.ts) from the local worker of 2 instances × workerConcurrency.',
    ],
    queueConcurrency: queueConcurrency(readQuotas(quotasFile), 2 * settings.workerConcurrency),
    medians: medians.map(({ median: _, ...cell }) => cell),
    measures,
  };
  writeFileSync(jsonFile, `${JSON.stringify(out, null, 2)}\n`);
  const svgFile = join(outDir, 'scale.svg');
  const instances = Math.max(0, ...measures.map((m) => Object.keys(m.procs.instancePeaksMb).length));
  const shared = settings.shared
    ? `; ${settings.shared.models} models at ${settings.shared.rpm.toLocaleString('en-US')} RPM each at once`
    : '';
  writeFileSync(
    svgFile,
    await scaleChartSvg(
      medians.map((m) => m.median),
      {
        text: `Makespan and the functions' memory against N (${settings.rpm.toLocaleString('en-US')} RPM${shared})`,
        subtitle: `${settings.latencyMs} ms latency, ${settings.profile} local cloud, ${instances} function instances; dashed: the quota limit N·60/RPM + latency, and memory before each run`,
      },
    ),
  );
  process.stdout.write(`${table(settings, measures)}\n`);
  for (const m of medians.filter((c) => c.runs > 1)) {
    process.stdout.write(
      `\n${m.cell}: median ratio ${m.ratio} (${m.ratios.join(', ')}), CPU an item ${m.cpuMsPerItem} ms (${m.cpuMsPerItemRuns.join(', ')})`,
    );
  }
  process.stdout.write(
    `\nwritten: ${relative(PROJECT_ROOT, jsonFile)}, ${relative(PROJECT_ROOT, svgFile)} (${head.elapsedS} s)\n`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
