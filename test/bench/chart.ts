import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/**
 * The comparison's chart: makespan against the number of prompts for each system, one panel per
 * regime, both axes logarithmic, with the quota's limit as a dashed black line. A capped run is drawn
 * at its projected makespan with its own mark, so it never looks finished.
 */
export interface MakespanPoint {
  regime: string;
  n: number;
  system: string;
  makespanS: number;
  status: RunStatus;
}

export type RunStatus = 'every prompt answered' | 'finished, prompts lost' | 'capped: projected';

export interface LimitPoint {
  regime: string;
  n: number;
  limitS: number;
}

const STATUS_SHAPES: Record<RunStatus, string> = {
  'every prompt answered': 'circle',
  'finished, prompts lost': 'cross',
  'capped: projected': 'triangle-up',
};

/** The Vega-Lite spec of the chart. */
export function makespanSpec(
  points: MakespanPoint[],
  limits: LimitPoint[],
  title: { text: string; subtitle: string },
): TopLevelSpec {
  const values = [
    ...points.map((p) => ({ ...p, kind: 'run' })),
    ...limits.map((l) => ({ ...l, system: 'quota limit', makespanS: l.limitS, kind: 'limit' })),
  ];
  const x = { field: 'n', type: 'quantitative', scale: { type: 'log' }, title: 'prompts (N)' } as const;
  const y = {
    field: 'makespanS',
    type: 'quantitative',
    scale: { type: 'log' },
    title: 'makespan (s)',
  } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { ...title, fontSize: 13, subtitleFontSize: 11 },
    data: { values },
    facet: { column: { field: 'regime', type: 'nominal', title: null } },
    spec: {
      width: 320,
      height: 260,
      layer: [
        {
          transform: [{ filter: "datum.kind === 'limit'" }],
          mark: { type: 'line', color: 'black', strokeDash: [6, 4], strokeWidth: 1.5 },
          encoding: { x, y },
        },
        {
          transform: [{ filter: "datum.kind === 'run'" }],
          mark: { type: 'line', strokeWidth: 1, opacity: 0.5 },
          encoding: { x, y, color: { field: 'system', type: 'nominal', title: 'system' } },
        },
        {
          transform: [{ filter: "datum.kind === 'run'" }],
          mark: { type: 'point', filled: true, size: 70 },
          encoding: {
            x,
            y,
            color: { field: 'system', type: 'nominal', title: 'system' },
            shape: {
              field: 'status',
              type: 'nominal',
              title: 'run',
              scale: { domain: Object.keys(STATUS_SHAPES), range: Object.values(STATUS_SHAPES) },
            },
          },
        },
      ],
    },
    resolve: { scale: { y: 'shared' } },
    config: { legend: { orient: 'right', labelLimit: 260 }, range: { category: { scheme: 'tableau10' } } },
  } as TopLevelSpec;
}

/** Renders the chart to an SVG document (Vega's headless renderer; no canvas needed). */
export async function makespanChartSvg(
  points: MakespanPoint[],
  limits: LimitPoint[],
  title: { text: string; subtitle: string },
): Promise<string> {
  const { spec } = compile(makespanSpec(points, limits, title));
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
