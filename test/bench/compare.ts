import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { makePrompts } from '../../bench/contenders/prompts.js';
import { createJobsClient, type JobsClient } from '../../functions/api/client.js';
import { standInControl } from '../../infra/local/gemini/control.js';
import { type TokenRule, textTokens } from '../../infra/local/gemini/tokens.js';
import { PROJECT_ROOT } from '../../infra/local/stack.js';
import { makespanChartSvg } from './chart.js';
import {
  type BatchRecord,
  chartPoints,
  measured,
  notes,
  progressLine,
  type RegimeRecord,
  round,
  table,
} from './compare-report.js';
import { type RunOutcome, runContender, runFanout } from './compare-runs.js';
import {
  batchModelOf,
  type CompareSettings,
  capSeconds,
  comparisonQuotas,
  limitSeconds,
  modelOf,
  type Regime,
  readCompareSettings,
  WARM_UP_MODEL,
} from './compare-settings.js';
import { benchFolders, bootStack, resultsHead } from './compare-stack.js';

/**
 * The comparison of issue 11: the seed's async patterns (bench/contenders/) and gemini-fanout, one
 * after the other on one local cloud, against the same Gemini stand-in with the same quota and
 * latency, each run on a model of its own. For N = 100, 1,000 and 5,000 prompts, short prompts
 * (RPM-bound) and long ones (TPM-bound), it measures makespan, its ratio to the quota's limit, 429s
 * the stand-in sent, prompts lost, order of the results and CPU seconds; then the Batch API line
 * (cost per 1,000 prompts and time to results). Prints markdown tables, writes compare.json and
 * compare.svg.
 *
 * `npx tsx test/bench/compare.ts`; settings in compare-settings.ts (e.g. `COMPARE_N=100` for a quick
 * run). Only a run with every default writes bench/results/; any other writes .local/compare/.
 */
interface Context {
  settings: CompareSettings;
  jobs: JobsClient;
  geminiBaseUrl: string;
  functionsPid: number;
  rule: TokenRule;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Every system on every N of one regime, one run at a time. */
async function measureRegime(ctx: Context, regime: Regime): Promise<RegimeRecord> {
  const { settings, jobs, geminiBaseUrl, functionsPid, rule } = ctx;
  const record: RegimeRecord = {
    regime: regime.name,
    label: regime.label,
    promptChars: regime.promptChars,
    tokensPerPrompt: textTokens(makePrompts(1, regime.promptChars)[0]!, rule),
    runs: [],
  };
  for (const n of settings.ns) {
    const prompts = makePrompts(n, regime.promptChars);
    const totalTokens = prompts.reduce((sum, p) => sum + textTokens(p, rule), 0);
    const { limitS, bound } = limitSeconds(settings, n, totalTokens);
    const capS = capSeconds(settings, limitS);
    for (const system of settings.systems) {
      const model = modelOf(regime.name, n, system);
      let outcome: RunOutcome;
      if (system === 'gemini-fanout') {
        const { job: _job, ...run } = await runFanout({
          jobs,
          geminiBaseUrl,
          functionsPid,
          model,
          prompts,
          mode: 'realtime',
          capS,
        });
        outcome = run;
      } else {
        outcome = await runContender({
          system,
          geminiBaseUrl,
          model,
          n,
          promptChars: regime.promptChars,
          rpm: settings.rpm,
          latencyMs: settings.latencyMs,
          capS,
        });
      }
      const run = measured(outcome, limitS, bound);
      record.runs.push(run);
      log(progressLine(regime.name, run));
    }
  }
  return record;
}

/** One gemini-fanout job in mode batch, set beside the realtime run of the same prompts' size. */
async function measureBatch(ctx: Context, regime: Regime, record?: RegimeRecord): Promise<BatchRecord> {
  const batch = ctx.settings.batch!;
  const n = batch.n;
  const run = await runFanout({
    jobs: ctx.jobs,
    geminiBaseUrl: ctx.geminiBaseUrl,
    functionsPid: ctx.functionsPid,
    model: batchModelOf(regime.name),
    prompts: makePrompts(n, regime.promptChars),
    mode: 'batch',
    capS: ctx.settings.cap.maxS + (batch.pendingMs + batch.runningMs) / 1000 + 30,
  });
  const realtime = record?.runs
    .filter((r) => r.system === 'gemini-fanout' && r.finished && r.done > 0)
    .sort((a, b) => Math.abs(a.n - n) - Math.abs(b.n - n))[0];
  const result: BatchRecord = {
    regime: regime.name,
    n,
    finished: run.finished,
    timeToResultsS: round(run.wallS, 1),
    succeeded: run.done,
    inOrder: run.inOrder,
    costUsd: run.costUsd ?? 0,
    costPer1000Usd: run.done > 0 ? ((run.costUsd ?? 0) / run.done) * 1000 : 0,
    batches: run.job.batches?.length ?? 0,
    realtime: realtime
      ? {
          n: realtime.n,
          makespanS: round(realtime.wallS, 1),
          costPer1000Usd: ((realtime.costUsd ?? 0) / realtime.done) * 1000,
        }
      : null,
  };
  log(
    `${regime.name} batch N=${n}: ${result.finished ? 'results' : 'capped'} in ${result.timeToResultsS} s, ` +
      `$${result.costPer1000Usd.toFixed(5)} per 1,000 prompts`,
  );
  return result;
}

async function main(): Promise<void> {
  const settings = readCompareSettings(process.env);
  const { scratch, outDir, quotasFile } = benchFolders(
    'compare',
    settings.isDefault,
    comparisonQuotas(settings),
  );

  const started = performance.now();
  const loadAtStart = loadavg()[0]!;
  log('booting the local cloud (strict profile); its logs go to .local/compare/stack.log');
  const stack = await bootStack(quotasFile, join(scratch, 'stack.log'), {
    env: { FANOUT_WORKER_CONCURRENCY: String(settings.workerConcurrency) },
  });
  const regimes: RegimeRecord[] = [];
  const batches: BatchRecord[] = [];
  try {
    const { geminiBaseUrl, functionsPid } = stack.info;
    await standInControl(geminiBaseUrl).configure({
      latency: { '*': settings.latencyMs },
      ...(settings.batch
        ? { batch: { pendingMs: settings.batch.pendingMs, runningMs: settings.batch.runningMs } }
        : {}),
    });
    const ctx: Context = {
      settings,
      jobs: createJobsClient(stack.info.ingestUrl),
      geminiBaseUrl,
      functionsPid,
      rule: (await standInControl(geminiBaseUrl).config()).tokens as TokenRule,
    };
    if (settings.warmUp > 0 && settings.systems.includes('gemini-fanout')) {
      log(
        `warm-up: one gemini-fanout job of ${settings.warmUp} prompts on a model of its own (not measured)`,
      );
      await runFanout({
        ...ctx,
        model: WARM_UP_MODEL,
        prompts: makePrompts(settings.warmUp, 60).map((p) => `warm-up ${p}`),
        mode: 'realtime',
        capS: 300,
      });
    }
    for (const regime of settings.regimes) regimes.push(await measureRegime(ctx, regime));
    if (settings.batch) {
      for (const regime of settings.regimes) {
        batches.push(
          await measureBatch(
            ctx,
            regime,
            regimes.find((r) => r.regime === regime.name),
          ),
        );
      }
    }
  } finally {
    await stack.stop();
  }

  const head = resultsHead(started, loadAtStart);
  const jsonFile = join(outDir, 'compare.json');
  const out = {
    ...head,
    quota: {
      tier: settings.tierModel,
      rpm: settings.rpm,
      tpm: settings.tpm,
      latencyMs: settings.latencyMs,
      profile: 'strict',
    },
    cap: settings.cap,
    warmUpPrompts: settings.systems.includes('gemini-fanout') ? settings.warmUp : 0,
    notes: notes(settings),
    regimes,
    batch: settings.batch ? { ...settings.batch, runs: batches } : null,
  };
  writeFileSync(jsonFile, `${JSON.stringify(out, null, 2)}\n`);
  const svgFile = join(outDir, 'compare.svg');
  const { points, limits } = chartPoints(regimes);
  const quota = `${settings.rpm.toLocaleString('en-US')} RPM, ${settings.tpm.toLocaleString('en-US')} TPM`;
  writeFileSync(
    svgFile,
    await makespanChartSvg(points, limits, {
      text: `Makespan against N on one quota (${quota}, ${settings.latencyMs} ms latency)`,
      subtitle: 'dashed: the quota limit, max(N·60/RPM + latency, Σtokens·60/TPM); log scales',
    }),
  );
  process.stdout.write(`${table(settings, regimes, batches)}\n`);
  process.stdout.write(
    `\nwritten: ${relative(PROJECT_ROOT, jsonFile)}, ${relative(PROJECT_ROOT, svgFile)} (${head.elapsedS} s)\n`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
