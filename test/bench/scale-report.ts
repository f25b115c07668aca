import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ProcessReport } from './scale-procs.js';
import type { ScaleSettings } from './scale-settings.js';

/**
 * What the scale benchmark records, its table and its chart (makespan and the functions' peak
 * memory against N, log x; the shared run drawn at the sum of its prompts with a mark of its own).
 */

/** One job on one model. */
export interface ScaleRun {
  model: string;
  n: number;
  rpm: number;
  finished: boolean;
  /** Submit to last result read; the cap if capped. */
  makespanS: number;
  limitS: number;
  ratio: number;
  capS: number;
  succeeded: number;
  lost: number;
  inOrder: boolean;
  /** The job's own clock: createdAt to finishedAt. */
  serverS: number | null;
  upstream: {
    requests: number;
    admitted: number;
    rejected429: number;
    peakAdmittedPer60s: number;
    answeredAgain: number;
  };
  /** Requests the stand-in received per second, from its first second on, and what that adds up to. */
  dispatch: {
    plannedPerS: number;
    firstRequestAfterS: number;
    spanS: number;
    meanPerS: number;
    best10sPerS: number;
    perSecond: number[];
  };
  costUsd: number | null;
  error?: string;
}

/** One measurement: a single job (part a) or several at once (part b), with the processes around it. */
export interface ScaleMeasure {
  part: 'single' | 'shared';
  label: string;
  /** The cell a repeated run belongs to (its label without the run's number). */
  cell: string;
  /** Prompts in all its jobs. */
  n: number;
  makespanS: number;
  limitS: number;
  ratio: number;
  runs: ScaleRun[];
  procs: ProcessReport;
  loadAtStart: number;
}

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** CPU an item: the functions, the stack process and the Firestore emulator without its JIT, in ms. */
export function cpuMsPerItem(m: ScaleMeasure): number {
  const c = m.procs.cpuS;
  return round(((c.functions + c.stackProcess + c.firestore - (c.firestoreJit ?? 0)) / m.n) * 1000);
}

/** A cell's runs: the median run by ratio, and every run's ratio and CPU an item. */
export interface CellMedian {
  cell: string;
  runs: number;
  ratio: number;
  ratios: number[];
  cpuMsPerItem: number;
  cpuMsPerItemRuns: number[];
  median: ScaleMeasure;
}

/** The median run of each cell (the lower middle of an even count), in the order the cells ran. */
export function cellMedians(measures: ScaleMeasure[]): CellMedian[] {
  const cells = [...new Set(measures.map((m) => m.cell))];
  return cells.map((cell) => {
    const runs = measures.filter((m) => m.cell === cell);
    const byRatio = [...runs].sort((a, b) => a.ratio - b.ratio);
    const cpu = runs.map(cpuMsPerItem);
    return {
      cell,
      runs: runs.length,
      ratio: byRatio[Math.floor((runs.length - 1) / 2)]!.ratio,
      ratios: runs.map((m) => m.ratio),
      cpuMsPerItem: [...cpu].sort((a, b) => a - b)[Math.floor((cpu.length - 1) / 2)]!,
      cpuMsPerItemRuns: cpu,
      median: byRatio[Math.floor((runs.length - 1) / 2)]!,
    };
  });
}
const fmt = (value: number) => value.toLocaleString('en-US');

/** Requests per second from the first to the last second, their mean and the best 10-second mean. */
export function dispatchSeries(
  perSecond: Array<{ second: number; count: number }>,
  submitEpochMs: number,
  plannedPerS: number,
): ScaleRun['dispatch'] {
  // The stand-in counts since it started: a repeat on the same model has the earlier runs' seconds too.
  const submitSecond = Math.floor(submitEpochMs / 1000);
  const own = perSecond.filter((s) => s.second >= submitSecond);
  if (own.length === 0) {
    return { plannedPerS, firstRequestAfterS: 0, spanS: 0, meanPerS: 0, best10sPerS: 0, perSecond: [] };
  }
  const sorted = [...own].sort((a, b) => a.second - b.second);
  const first = sorted[0]!.second;
  const counts = new Array<number>(sorted.at(-1)!.second - first + 1).fill(0);
  for (const { second, count } of sorted) counts[second - first] = count;
  const total = counts.reduce((a, b) => a + b, 0);
  const window = Math.min(10, counts.length);
  let sum = counts.slice(0, window).reduce((a, b) => a + b, 0);
  let best = sum;
  for (let end = window; end < counts.length; end++) {
    sum += counts[end]! - counts[end - window]!;
    best = Math.max(best, sum);
  }
  return {
    plannedPerS: round(plannedPerS, 1),
    // The stand-in counts by whole seconds: the first one may open before the submit.
    firstRequestAfterS: Math.max(0, round(first - submitEpochMs / 1000, 1)),
    spanS: counts.length,
    meanPerS: round(total / counts.length, 1),
    best10sPerS: round(best / window, 1),
    perSecond: counts,
  };
}

/** The line printed as each measurement ends. */
export function progressLine(m: ScaleMeasure): string {
  const lost = m.runs.reduce((s, r) => s + r.lost, 0);
  const r429 = m.runs.reduce((s, r) => s + r.upstream.rejected429, 0);
  const capped = m.runs.some((r) => !r.finished) ? ' CAPPED' : '';
  return (
    `${m.label}: ${round(m.makespanS, 1)} s against ${round(m.limitS, 1)} s (${round(m.ratio)}x)${capped}, ` +
    `${r429} 429s, ${lost} lost, peak RSS ${m.procs.peakTreeRssMb} MB ` +
    `(largest instance ${m.procs.peakInstanceRssMb} MB), functions CPU ${m.procs.cpuS.functions} s`
  );
}

/** The markdown tables: the result, then where the time and the CPU went. */
export function table(settings: ScaleSettings, measures: ScaleMeasure[]): string {
  const head =
    '| run | prompts | RPM | limit (s) | makespan (s) | ratio | 429s upstream | lost | in order | peak RSS functions (MB) | peak RSS largest instance (MB) | RSS before (MB) | CPU functions (s) |';
  const rows = [head, `|${' --- |'.repeat(13)}`];
  for (const m of measures) {
    const sub = m.part === 'shared' ? m.runs : [];
    const all = m.runs;
    rows.push(
      `| ${m.label} | ${fmt(m.n)} | ${fmt(all[0]?.rpm ?? 0)}${m.part === 'shared' ? ' each' : ''} | ${round(m.limitS, 1)} | ${all.some((r) => !r.finished) ? '≥ ' : ''}${round(m.makespanS, 1)} | ${round(m.ratio)} | ${all.reduce((s, r) => s + r.upstream.rejected429, 0)} | ${all.reduce((s, r) => s + r.lost, 0)} | ${all.every((r) => r.inOrder) ? 'yes' : 'no'} | ${m.procs.peakTreeRssMb} | ${m.procs.peakInstanceRssMb} | ${m.procs.startTreeRssMb} | ${m.procs.cpuS.functions} |`,
    );
    for (const r of sub) {
      rows.push(
        `| ↳ ${r.model} | ${fmt(r.n)} | ${fmt(r.rpm)} | ${round(r.limitS, 1)} | ${r.finished ? '' : '≥ '}${round(r.makespanS, 1)} | ${round(r.ratio)} | ${r.upstream.rejected429} | ${r.lost} | ${r.inOrder ? 'yes' : 'no'} | | | | |`,
      );
    }
  }
  const time = [
    '| run | planned dispatch (/s) | first request after submit (s, ±1) | best 10 s (/s) | mean (/s) | server time (s) | CPU s: functions / stack process (Tasks, Storage, stand-in) / Firestore (of it the JVM JIT) / benchmark | machine busy |',
    `|${' --- |'.repeat(8)}`,
  ];
  for (const m of measures) {
    const d = m.runs.map((r) => r.dispatch);
    const sum = (pick: (x: ScaleRun['dispatch']) => number) =>
      round(
        d.reduce((s, x) => s + pick(x), 0),
        1,
      );
    const c = m.procs.cpuS;
    time.push(
      `| ${m.label} | ${sum((x) => x.plannedPerS)} | ${round(Math.max(...d.map((x) => x.firstRequestAfterS)), 1)} | ${sum((x) => x.best10sPerS)} | ${sum((x) => x.meanPerS)} | ${m.runs.map((r) => (r.serverS === null ? '–' : round(r.serverS, 1))).join(', ')} | ${c.functions} / ${c.stackProcess} / ${c.firestore} (${c.firestoreJit ?? '–'}) / ${c.benchmark} | ${Math.round(m.procs.machineBusyShare * 100)}% |`,
    );
  }
  const quota =
    `${fmt(settings.rpm)} RPM, ${fmt(settings.tpm)} TPM for one model` +
    (settings.shared
      ? `; ${settings.shared.models} models at ${fmt(settings.shared.rpm)} RPM each at once`
      : '');
  return [
    `Scale (${quota}; ${settings.latencyMs} ms latency, ${settings.promptChars}-character prompts, ${settings.profile} profile)`,
    '',
    ...rows,
    '',
    'Where the time went (dispatch: requests the stand-in received; shared rows: sums over the models)',
    '',
    ...time,
  ].join('\n');
}

const PART_SHAPES = { 'one model': 'circle', 'several models at once (N = their sum)': 'square' } as const;

/** The Vega-Lite spec of the chart: makespan (log-log, the limit dashed) and peak RSS (log x). */
export function scaleSpec(measures: ScaleMeasure[], title: { text: string; subtitle: string }): TopLevelSpec {
  const point = (m: ScaleMeasure, series: string, value: number, dashed = false) => ({
    n: m.n,
    value,
    series,
    dashed,
    part: m.part === 'single' ? 'one model' : 'several models at once (N = their sum)',
    line: m.part === 'single',
  });
  const time = measures.flatMap((m) => [
    point(m, 'makespan', m.makespanS),
    point(m, 'quota limit', m.limitS, true),
  ]);
  const memory = measures.flatMap((m) => [
    point(m, 'functions: host + instances, peak', m.procs.peakTreeRssMb),
    point(m, 'largest instance, peak', m.procs.peakInstanceRssMb),
    point(m, 'functions before the run', m.procs.startTreeRssMb, true),
  ]);
  const x = { field: 'n', type: 'quantitative', scale: { type: 'log' }, title: 'prompts (N)' } as const;
  const shape = {
    field: 'part',
    type: 'nominal',
    title: 'run',
    scale: { domain: Object.keys(PART_SHAPES), range: Object.values(PART_SHAPES) },
  } as const;
  const dash = {
    field: 'dashed',
    type: 'nominal',
    legend: null,
    scale: {
      domain: [false, true],
      range: [
        [1, 0],
        [6, 4],
      ],
    },
  } as const;
  const panel = (values: object[], y: object, legend: string, colors: Record<string, string>) => {
    const color = {
      field: 'series',
      type: 'nominal',
      title: legend,
      scale: { domain: Object.keys(colors), range: Object.values(colors) },
    } as const;
    return {
      width: 300,
      height: 240,
      data: { values },
      layer: [
        {
          transform: [{ filter: 'datum.line' }],
          mark: { type: 'line', strokeWidth: 1.2 },
          encoding: { x, y: { ...y, field: 'value', type: 'quantitative' }, color, strokeDash: dash },
        },
        {
          mark: { type: 'point', filled: true, size: 60 },
          encoding: { x, y: { ...y, field: 'value', type: 'quantitative' }, color, shape },
        },
      ],
    };
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { ...title, fontSize: 13, subtitleFontSize: 11 },
    hconcat: [
      panel(time, { scale: { type: 'log' }, title: 'makespan (s)' }, 'time', {
        makespan: '#4c78a8',
        'quota limit': 'black',
      }),
      panel(memory, { scale: { zero: true }, title: 'resident memory (MB)' }, 'memory', {
        'functions: host + instances, peak': '#e45756',
        'largest instance, peak': '#f58518',
        'functions before the run': '#9d9d9d',
      }),
    ],
    resolve: {
      scale: { color: 'independent', strokeDash: 'independent' },
      legend: { color: 'independent', shape: 'shared' },
    },
    config: { legend: { orient: 'bottom', direction: 'vertical', labelLimit: 320 } },
  } as TopLevelSpec;
}

/** Renders the chart to an SVG document (Vega's headless renderer, as test/bench/chart.ts does). */
export async function scaleChartSvg(
  measures: ScaleMeasure[],
  title: { text: string; subtitle: string },
): Promise<string> {
  const { spec } = compile(scaleSpec(measures, title));
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
