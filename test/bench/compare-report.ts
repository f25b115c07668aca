import type { LimitPoint, MakespanPoint, RunStatus } from './chart.js';
import type { RunOutcome } from './compare-runs.js';
import type { CompareSettings, Regime } from './compare-settings.js';

/**
 * What the comparison reports: the records it writes to compare.json, the markdown table it prints,
 * the notes that say how each figure was measured, and the chart's points. Pure: no I/O.
 */
export interface MeasuredRun extends RunOutcome {
  limitS: number;
  bound: 'rpm' | 'tpm';
  /** Makespan (projected when capped) over the limit; null when a capped run had ended nothing. */
  ratio: number | null;
  projectedS: number | null;
}

export interface RegimeRecord {
  regime: Regime['name'];
  label: string;
  promptChars: number;
  tokensPerPrompt: number;
  runs: MeasuredRun[];
}

export interface BatchRecord {
  regime: Regime['name'];
  n: number;
  finished: boolean;
  timeToResultsS: number;
  succeeded: number;
  inOrder: boolean;
  costUsd: number;
  costPer1000Usd: number;
  batches: number;
  /** gemini-fanout's realtime run of the same prompts' size and the nearest N. */
  realtime: { n: number; makespanS: number; costPer1000Usd: number } | null;
}

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** A run with its limit: a capped run's makespan projected linearly from the prompts it had ended. */
export function measured(run: RunOutcome, limitS: number, bound: 'rpm' | 'tpm'): MeasuredRun {
  const ended = run.done + run.lost;
  const projectedS = run.finished || ended === 0 ? null : (run.wallS * run.n) / ended;
  const ratio = run.finished ? run.wallS / limitS : projectedS === null ? null : projectedS / limitS;
  return { ...run, limitS, bound, ratio, projectedS };
}

export function statusOf(run: RunOutcome): RunStatus {
  if (!run.finished) return 'capped: projected';
  return run.lost > 0 || run.done < run.n ? 'finished, prompts lost' : 'every prompt answered';
}

/** `12.3 s`, or `capped: 800 of 5000 done in 240 s (projected 1500 s)`: a capped run never reads as finished. */
export function describeMakespan(run: MeasuredRun): string {
  if (run.finished) return `${round(run.wallS, 1)} s`;
  return (
    `capped: ${run.done + run.lost} of ${run.n} done in ${round(run.wallS, run.wallS < 10 ? 1 : 0)} s` +
    (run.projectedS === null ? '' : ` (projected ${round(run.projectedS, 0)} s)`)
  );
}

/** One progress line per run, for stderr. */
export function progressLine(regime: Regime['name'], run: MeasuredRun): string {
  return (
    `${regime} N=${run.n} ${run.system}: ${describeMakespan(run)}, ` +
    `${run.ratio === null ? '?' : round(run.ratio)}× limit (${round(run.limitS, 1)} s), ` +
    `429s ${run.upstream.rejected429}, lost ${run.lost}, load ${run.loadAtStart}` +
    (run.error ? `, error: ${run.error}` : '')
  );
}

/** How each figure was measured: written into compare.json. */
export function notes(s: CompareSettings): string[] {
  return [
    `One local cloud (strict profile), one Gemini stand-in: ${s.rpm} RPM and ${s.tpm} input TPM per model (the tier of ${s.tierModel} in infra/quotas.json), ${s.latencyMs} ms latency, each run on a model of its own.`,
    'Limit: max(N·60/RPM + latency, Σtokens·60/TPM), tokens as the stand-in counts them. The stand-in holds quotas over a rolling minute, as upstream does: a set that fits into one minute of quota can end below the limit in one burst.',
    `Cap: a run is stopped at min(${s.cap.maxS} s, max(${s.cap.minS} s, ${s.cap.factor} × its limit)) and reported as capped, its makespan projected linearly from the prompts it had ended.`,
    `Makespan: a contender from its first request to its last answer (process start-up excluded); gemini-fanout from POST /jobs to the last result read in input order (polling the job every 250 ms). Each gemini-fanout run starts on a new model queue, which the strict Cloud Tasks emulator ramps up from 20% of its rate over 30 s, as upstream does for a new or idle queue; ${s.ramp ? 'gemini-fanout plans for that ramp (queueRamp), its tasks carrying several items while the queue ramps' : 'gemini-fanout does not plan for that ramp (COMPARE_RAMP=off)'}.`,
    `Slots: the local worker serves ${s.workerConcurrency} requests an instance (FANOUT_WORKER_CONCURRENCY), so the queue that runs is not starved by the slot shares of the file's other models.`,
    "429s: what the stand-in sent for the run's model. Lost: prompts whose call failed for good. In order: every answer kept at its prompt's index and echoing that prompt.",
    "CPU: a contender its own process (process.cpuUsage, start-up and the TypeScript loader included); gemini-fanout its functions host and instances (from /proc), the emulators and the stand-in (Google's side) excluded.",
    `Batch: the stand-in's timing (PENDING ${s.batch?.pendingMs ?? 0} ms, RUNNING ${s.batch?.runningMs ?? 0} ms) plus the local scheduler's 10 s tick, not upstream's (up to 24 h). Costs are the job view's costUsd at the tier's prices.`,
  ];
}

/** The markdown tables printed at the end: one per regime, then the Batch API line. */
export function table(settings: CompareSettings, regimes: RegimeRecord[], batches: BatchRecord[]): string {
  const lines: string[] = [];
  for (const r of regimes) {
    lines.push(
      '',
      `${r.label}: ${r.promptChars}-character prompts (${r.tokensPerPrompt} tokens each), ` +
        `${settings.rpm.toLocaleString('en-US')} RPM, ${settings.tpm.toLocaleString('en-US')} TPM, ` +
        `${settings.latencyMs} ms latency`,
      '',
      '| N | system | makespan | limit | × limit | 429s upstream | lost | in order | CPU s |',
      '|---:|---|---|---:|---:|---:|---:|:---:|---:|',
    );
    for (const run of r.runs) {
      const name = run.concurrency ? `${run.system} (${run.concurrency})` : run.system;
      const ratio =
        run.ratio === null ? '?' : run.finished ? `${round(run.ratio)}` : `~${round(run.ratio, 1)}`;
      lines.push(
        `| ${run.n.toLocaleString('en-US')} | ${name} | ${describeMakespan(run)} | ${round(run.limitS, 1)} s | ` +
          `${ratio} | ${run.upstream.rejected429} | ${run.lost} | ${run.inOrder ? 'yes' : 'no'} | ` +
          `${Number.isNaN(run.cpuS) ? '?' : round(run.cpuS, 1)} |`,
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
      const realtime = b.realtime
        ? `${b.realtime.makespanS} s (N=${b.realtime.n.toLocaleString('en-US')}) | ${b.realtime.costPer1000Usd.toFixed(5)}`
        : '– | –';
      lines.push(
        `| ${b.n.toLocaleString('en-US')}, ${label} | ${b.finished ? '' : 'capped at '}${b.timeToResultsS} s | ` +
          `${b.costPer1000Usd.toFixed(5)} | ${realtime} |`,
      );
    }
  }
  return lines.join('\n');
}

/** The chart's points: a finished run at its makespan, a capped one at its projection. */
export function chartPoints(regimes: RegimeRecord[]): { points: MakespanPoint[]; limits: LimitPoint[] } {
  const points: MakespanPoint[] = [];
  const limits: LimitPoint[] = [];
  for (const r of regimes) {
    const label = `${r.label}, ${r.tokensPerPrompt} tokens a prompt`;
    for (const run of r.runs) {
      const makespanS = run.finished ? run.wallS : run.projectedS;
      if (makespanS !== null) {
        points.push({ regime: label, n: run.n, system: run.system, makespanS, status: statusOf(run) });
      }
    }
    for (const n of new Set(r.runs.map((run) => run.n))) {
      limits.push({ regime: label, n, limitS: r.runs.find((run) => run.n === n)!.limitS });
    }
  }
  return { points, limits };
}
