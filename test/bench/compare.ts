import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { makePrompts } from '../../bench/contenders/prompts.js';
import { createJobsClient } from '../../functions/api/client.js';
import type { TokenRule } from '../../infra/local/gemini/tokens.js';
import { textTokens } from '../../infra/local/gemini/tokens.js';
import { PROJECT_ROOT } from '../../infra/local/stack.js';
import { type LimitPoint, type MakespanPoint, makespanChartSvg, type RunStatus } from './chart.js';
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
import { bootStack, configureStandIn, standInConfig } from './compare-stack.js';

/**
 * The comparison of issue 11: the seed's async patterns (bench/contenders/) and gemini-fanout, one
 * after the other on one local cloud, against the same Gemini stand-in with the same quota and
 * latency, each run on a model of its own. For N = 100, 1,000 and 5,000 prompts, short prompts
 * (RPM-bound) and long ones (TPM-bound), it measures makespan, its ratio to the quota's limit, 429s
 * the stand-in sent, prompts lost, order of the results and CPU seconds; then the Batch API line
 * (cost per 1,000 prompts and time to results). Prints a table, writes compare.json and a chart.
 *
 * `npx tsx test/bench/compare.ts`; settings in compare-settings.ts (e.g. `COMPARE_N=100` for a quick
 * run). Only a run with every default writes bench/results/; any other writes .local/compare/.
 */
interface RegimeRecord {
  regime: Regime['name'];
  label: string;
  promptChars: number;
  tokensPerPrompt: number;
  runs: Array<
    RunOutcome & { limitS: number; bound: 'rpm' | 'tpm'; ratio: number | null; projectedS: number | null }
  >;
}

interface BatchRecord {
  regime: Regime['name'];
  n: number;
  finished: boolean;
  timeToResultsS: number;
  succeeded: number;
  inOrder: boolean;
  costUsd: number;
  costPer1000Usd: number;
  batches: number;
  realtime: { n: number; makespanS: number; costPer1000Usd: number } | null;
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const log = (line: string) => process.stderr.write(`${line}\n`);

/** A capped run's makespan, projected linearly from the prompts it had ended (answered or lost). */
function projected(run: RunOutcome): number | null {
  if (run.finished) return null;
  const ended = run.done + run.lost;
  return ended > 0 ? (run.wallS * run.n) / ended : null;
}

function statusOf(run: RunOutcome): RunStatus {
  if (!run.finished) return 'capped: projected';
  return run.lost > 0 || run.done < run.n ? 'finished, prompts lost' : 'every prompt answered';
}

async function main(): Promise<void> {
  const settings = readCompareSettings(process.env);
  const outDir = settings.isDefault
    ? join(PROJECT_ROOT, 'bench', 'results')
    : join(PROJECT_ROOT, '.local', 'compare');
  const scratch = join(PROJECT_ROOT, '.local', 'compare');
  mkdirSync(scratch, { recursive: true });
  mkdirSync(outDir, { recursive: true });
  const quotasFile = join(scratch, 'quotas.json');
  writeFileSync(quotasFile, `${JSON.stringify(comparisonQuotas(settings), null, 2)}\n`);

  const started = performance.now();
  const loadAtStart = loadavg()[0]!;
  log(`booting the local cloud (strict profile); its logs go to .local/compare/stack.log`);
  const stack = await bootStack(quotasFile, join(scratch, 'stack.log'));
  const regimes: RegimeRecord[] = [];
  const batches: BatchRecord[] = [];
  try {
    const { geminiBaseUrl, functionsPid } = stack.info;
    const jobs = createJobsClient(stack.info.ingestUrl);
    await configureStandIn(geminiBaseUrl, {
      latency: { '*': settings.latencyMs },
      ...(settings.batch
        ? { batch: { pendingMs: settings.batch.pendingMs, runningMs: settings.batch.runningMs } }
        : {}),
    });
    const rule = (await standInConfig(geminiBaseUrl)).tokens as TokenRule;

    if (settings.warmUp > 0 && settings.systems.includes('gemini-fanout')) {
      log(`warm-up: one gemini-fanout job of ${settings.warmUp} prompts on its own model (not measured)`);
      await runFanout({
        jobs,
        geminiBaseUrl,
        functionsPid,
        model: WARM_UP_MODEL,
        prompts: makePrompts(settings.warmUp, 60).map((p) => `warm-up ${p}`),
        mode: 'realtime',
        capS: 300,
      });
    }

    for (const regime of settings.regimes) {
      const record: RegimeRecord = {
        regime: regime.name,
        label: regime.label,
        promptChars: regime.promptChars,
        tokensPerPrompt: textTokens(makePrompts(1, regime.promptChars)[0]!, rule),
        runs: [],
      };
      regimes.push(record);
      for (const n of settings.ns) {
        const prompts = makePrompts(n, regime.promptChars);
        const totalTokens = prompts.reduce((sum, p) => sum + textTokens(p, rule), 0);
        const { limitS, bound } = limitSeconds(settings, n, totalTokens);
        const capS = capSeconds(settings, limitS);
        for (const system of settings.systems) {
          const model = modelOf(regime.name, n, system);
          const outcome =
            system === 'gemini-fanout'
              ? await runFanout({ jobs, geminiBaseUrl, functionsPid, model, prompts, mode: 'realtime', capS })
              : await runContender({
                  system,
                  geminiBaseUrl,
                  model,
                  n,
                  promptChars: regime.promptChars,
                  rpm: settings.rpm,
                  latencyMs: settings.latencyMs,
                  capS,
                });
          const { job: _job, ...run } = outcome as RunOutcome & { job?: unknown };
          const projectedS = projected(run);
          const ratio = run.finished ? run.wallS / limitS : projectedS === null ? null : projectedS / limitS;
          record.runs.push({ ...run, limitS, bound, ratio, projectedS });
          log(
            `${regime.name} N=${n} ${system}: ${describeMakespan(run, projectedS)}, ${ratio === null ? '?' : round(ratio)}× limit ` +
              `(${round(limitS, 1)} s), 429s ${run.upstream.rejected429}, lost ${run.lost}, load ${run.loadAtStart}` +
              (run.error ? `, error: ${run.error}` : ''),
          );
        }
      }
    }

    if (settings.batch) {
      for (const regime of settings.regimes) {
        const n = settings.batch.n;
        const capS = settings.cap.maxS + (settings.batch.pendingMs + settings.batch.runningMs) / 1000 + 30;
        const run = await runFanout({
          jobs,
          geminiBaseUrl,
          functionsPid,
          model: batchModelOf(regime.name),
          prompts: makePrompts(n, regime.promptChars),
          mode: 'batch',
          capS,
        });
        const realtimeRuns = regimes
          .find((r) => r.regime === regime.name)
          ?.runs.filter((r) => r.system === 'gemini-fanout' && r.finished && r.done > 0)
          .sort((a, b) => Math.abs(a.n - n) - Math.abs(b.n - n));
        const realtime = realtimeRuns?.[0];
        const record: BatchRecord = {
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
        batches.push(record);
        log(
          `${regime.name} batch N=${n}: ${record.finished ? 'results' : 'capped'} in ${record.timeToResultsS} s, ` +
            `$${record.costPer1000Usd.toFixed(5)} per 1,000 prompts`,
        );
      }
    }
  } finally {
    await stack.stop();
  }

  const elapsedS = (performance.now() - started) / 1000;
  const out = {
    date: new Date().toISOString(),
    machine: `${process.platform} ${process.arch}, node ${process.version}, ${cpus().length} cores`,
    loadAverage: { atStart: round(loadAtStart), atEnd: round(loadavg()[0]!) },
    elapsedS: Math.round(elapsedS),
    quota: {
      tier: settings.tierModel,
      rpm: settings.rpm,
      tpm: settings.tpm,
      latencyMs: settings.latencyMs,
      profile: 'strict',
    },
    cap: settings.cap,
    warmUpPrompts: settings.systems.includes('gemini-fanout') ? settings.warmUp : 0,
    notes: NOTES(settings),
    regimes,
    batch: settings.batch ? { ...settings.batch, runs: batches } : null,
  };
  const jsonFile = join(outDir, 'compare.json');
  writeFileSync(jsonFile, `${JSON.stringify(out, null, 2)}\n`);

  const points: MakespanPoint[] = [];
  const limits: LimitPoint[] = [];
  for (const r of regimes) {
    const label = `${r.label}, ${r.tokensPerPrompt} tokens a prompt`;
    for (const run of r.runs) {
      const makespanS = run.finished ? run.wallS : run.projectedS;
      if (makespanS !== null)
        points.push({ regime: label, n: run.n, system: run.system, makespanS, status: statusOf(run) });
    }
    for (const n of settings.ns) {
      const limitS = r.runs.find((run) => run.n === n)?.limitS;
      if (limitS !== undefined) limits.push({ regime: label, n, limitS });
    }
  }
  const svgFile = join(outDir, 'compare.svg');
  writeFileSync(
    svgFile,
    await makespanChartSvg(points, limits, {
      text: `Makespan against N on one quota (${settings.rpm} RPM, ${settings.tpm.toLocaleString('en-US')} TPM, ${settings.latencyMs} ms latency)`,
      subtitle: 'dashed: the quota limit, max(N·60/RPM + latency, Σtokens·60/TPM); log scales',
    }),
  );

  process.stdout.write(`${table(settings, regimes, batches)}\n`);
  process.stdout.write(
    `\nwritten: ${relative(PROJECT_ROOT, jsonFile)}, ${relative(PROJECT_ROOT, svgFile)} (${Math.round(elapsedS)} s)\n`,
  );
}

function describeMakespan(run: RunOutcome, projectedS: number | null): string {
  if (run.finished) return `${round(run.wallS, 1)} s`;
  const ended = run.done + run.lost;
  return (
    `capped: ${ended} of ${run.n} done in ${round(run.wallS, run.wallS < 10 ? 1 : 0)} s` +
    (projectedS === null ? '' : ` (projected ${round(projectedS, 0)} s)`)
  );
}

const NOTES = (s: CompareSettings): string[] => [
  `One local cloud (strict profile), one Gemini stand-in: ${s.rpm} RPM and ${s.tpm} input TPM per model (the tier of ${s.tierModel} in infra/quotas.json), ${s.latencyMs} ms latency, each run on a model of its own.`,
  'Limit: max(N·60/RPM + latency, Σtokens·60/TPM), tokens as the stand-in counts them. The stand-in holds quotas over a rolling minute, as upstream: a set that fits into one minute of quota can end below the limit in one burst.',
  `Cap: a run is stopped at min(${s.cap.maxS} s, max(${s.cap.minS} s, ${s.cap.factor} × its limit)) and reported as capped, its makespan projected linearly from the prompts it had ended.`,
  'Makespan: contenders from their first request to their last answer (process start-up excluded); gemini-fanout from POST /jobs to the last result read in order (polling every 250 ms).',
  "429s: what the stand-in sent for the run's model. Lost: prompts whose call failed for good. In order: every answer kept at its prompt's index and echoing that prompt.",
  'CPU: a contender its own process (process.cpuUsage, start-up and the TypeScript loader included); gemini-fanout its functions host and instances (from /proc), the emulators and the stand-in (Google’s side) excluded.',
  `Batch: the stand-in's timing (PENDING ${s.batch?.pendingMs ?? 0} ms, RUNNING ${s.batch?.runningMs ?? 0} ms) plus the local scheduler's 10 s tick, not upstream's (up to 24 h). Costs are the job view's costUsd at the tier's prices.`,
];

function table(settings: CompareSettings, regimes: RegimeRecord[], batches: BatchRecord[]): string {
  const lines: string[] = [];
  for (const r of regimes) {
    lines.push(
      '',
      `${r.label}: ${r.promptChars}-character prompts (${r.tokensPerPrompt} tokens each), ` +
        `${settings.rpm} RPM, ${settings.tpm.toLocaleString('en-US')} TPM, ${settings.latencyMs} ms latency`,
      '',
      '| N | system | makespan | × limit | 429s upstream | lost | in order | CPU s |',
      '|---:|---|---|---:|---:|---:|:---:|---:|',
    );
    for (const run of r.runs) {
      const name = run.concurrency ? `${run.system} (${run.concurrency})` : run.system;
      const ratio =
        run.ratio === null ? '?' : run.finished ? `${round(run.ratio)}` : `~${round(run.ratio, 1)}`;
      lines.push(
        `| ${run.n.toLocaleString('en-US')} | ${name} | ${describeMakespan(run, run.projectedS)} ` +
          `(limit ${round(run.limitS, 1)} s) | ${ratio} | ${run.upstream.rejected429} | ${run.lost} | ` +
          `${run.inOrder ? 'yes' : 'no'} | ${Number.isNaN(run.cpuS) ? '?' : round(run.cpuS, 1)} |`,
      );
    }
  }
  if (batches.length > 0) {
    lines.push(
      '',
      "Batch API path (gemini-fanout, mode batch; time to results is the stand-in's timing, not upstream's)",
      '',
      '| prompts | batch: time to results | batch: $ per 1,000 | realtime: makespan | realtime: $ per 1,000 |',
      '|---|---:|---:|---:|---:|',
    );
    for (const b of batches) {
      const label = regimes.find((r) => r.regime === b.regime)?.label ?? b.regime;
      lines.push(
        `| ${b.n.toLocaleString('en-US')}, ${label} | ${b.finished ? '' : 'capped '}${b.timeToResultsS} s | ` +
          `${b.costPer1000Usd.toFixed(5)} | ${b.realtime ? `${b.realtime.makespanS} s (N=${b.realtime.n})` : '–'} | ` +
          `${b.realtime ? b.realtime.costPer1000Usd.toFixed(5) : '–'} |`,
      );
    }
  }
  return lines.join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
