import { PROFILES } from './scenario.js';
import { runSimulation, type SimOptions, type SimResult } from './world.js';

/**
 * What the simulation's test files share: the seeds a run takes from the environment, and running a
 * window of them. SIM_SEEDS (2,000) and SIM_SEED_BASE (1) set the window, SIM_SEED replays one seed,
 * SIM_PROFILE names a profile of `PROFILES`, SIM_TOLERATE ignores the named invariants.
 */
const env = process.env;
export const REPLAY = env.SIM_SEED === undefined ? undefined : Number(env.SIM_SEED);
export const SEEDS = Number(env.SIM_SEEDS ?? 2000);
export const BASE = Number(env.SIM_SEED_BASE ?? 1);
export const PROFILE = env.SIM_PROFILE ? PROFILES[env.SIM_PROFILE] : undefined;
if (env.SIM_PROFILE && !PROFILE) throw new Error(`no profile ${env.SIM_PROFILE} in PROFILES`);
const TOLERATED = new Set((env.SIM_TOLERATE ?? '').split(',').filter(Boolean));

/** The seeds whose run broke an invariant (the tolerated ones aside). */
export async function runSeeds(
  seeds: number[],
  options: Omit<SimOptions, 'seed'> = {},
): Promise<SimResult[]> {
  const failures: SimResult[] = [];
  for (const seed of seeds) {
    const result = await runSimulation({ ...options, seed });
    result.violations = result.violations.filter((v) => !TOLERATED.has(v.invariant));
    if (result.violations.length > 0) failures.push(result);
  }
  return failures;
}

export const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/**
 * Half `part` (0 or 1) of the window of seeds: the default world's seeds run as two files side by
 * side (./sim.test.ts and ./sim-second-half.test.ts), so the unit tier is not waiting on one of them.
 */
export function halfOfSeeds(part: 0 | 1): number[] {
  const first = Math.ceil(SEEDS / 2);
  return part === 0 ? range(BASE, first) : range(BASE + first, SEEDS - first);
}

/** Runs `seeds` of the default world (or SIM_PROFILE's), printing how long they took and which failed. */
export async function checkSeeds(
  seeds: number[],
  report: (failures: SimResult[]) => string,
): Promise<number[]> {
  const started = performance.now();
  const failures = await runSeeds(seeds, PROFILE);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`seeds ${seeds[0]}–${seeds.at(-1)} in ${seconds} s; ${failures.length} failing`);
  if (failures.length > 0) console.log(report(failures));
  return failures.map((f) => f.seed);
}
