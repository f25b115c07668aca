/** How a failing simulation is reported: the one command that replays it, and what went wrong. */
import type { SimResult } from './world.js';

const COMMAND = 'npx vitest run test/sim/sim.test.ts';

/** The one command that replays `seed` (run under the named profile, if any). */
export const replayCommand = (seed: number, profile?: string) =>
  `SIM_SEED=${seed} ${profile ? `SIM_PROFILE=${profile} ` : ''}${COMMAND}`;

/** A failure report: a summary per invariant, then the first few seeds in full. */
export function report(
  failures: SimResult[],
  options: { profile?: string | undefined; detailed?: number; traceLines?: number } = {},
): string {
  const { profile, detailed = 3, traceLines = 40 } = options;
  const byInvariant = new Map<string, number[]>();
  for (const f of failures)
    for (const inv of new Set(f.violations.map((v) => v.invariant)))
      byInvariant.set(inv, [...(byInvariant.get(inv) ?? []), f.seed]);
  const summary = [...byInvariant].map(
    ([inv, seeds]) =>
      `  ${inv}: ${seeds.length} seeds (${seeds.slice(0, 10).join(', ')}${seeds.length > 10 ? ', …' : ''})`,
  );
  const details = failures
    .slice(0, detailed)
    .map((f) =>
      [
        `--- seed ${f.seed}: ${replayCommand(f.seed, profile)}`,
        ...f.violations.slice(0, 6).map((v) => `  ${v.invariant}: ${v.detail}`),
        f.scenario.replace(/^/gm, '  '),
        `  stats: ${JSON.stringify(f.stats)}`,
        `  trace (last ${traceLines} lines):`,
        f.trace.tail(traceLines).replace(/^/gm, '    '),
      ].join('\n'),
    );
  return [`${failures.length} failing seeds`, ...summary, ...details].join('\n');
}
