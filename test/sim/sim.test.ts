/**
 * The seeded fault simulation (issue 17): many seeds, each a whole small world (jobs, queue,
 * Gemini, crashes) driven by one seed in simulated time, every invariant checked at the end. This
 * file replays a seed and runs the first half of the default world's seeds, ./sim-second-half.test.ts
 * the second half, and ./sim-profiles.test.ts the other worlds: several items a task, adaptive rates,
 * the orphan sweep off (three files, so the unit tier runs them side by side).
 *
 *   npx vitest run test/sim                         2,000 seeds (SIM_SEEDS=n for more)
 *   SIM_SEED=1234 npx vitest run test/sim/sim.test.ts   replays one seed, with its trace
 *
 * SIM_SEED_BASE moves the window of seeds (CI may walk it forward); SIM_TRACE=1 echoes a replay's
 * trace as it happens; SIM_PROFILE names a profile of `PROFILES` (a replay of the sweep-off test);
 * SIM_TOLERATE=inv1,inv2 ignores the named invariants (while hunting a second hole behind a first), and nothing else.
 */
import { describe, expect, it } from 'vitest';
import { report } from './report.js';
import { BASE, checkSeeds, halfOfSeeds, PROFILE, REPLAY, SEEDS } from './seeds.js';
import { runSimulation } from './world.js';

const env = process.env;
const replay = REPLAY;

describe('seeded fault simulation', () => {
  if (replay !== undefined) {
    it(`seed ${replay} holds every invariant`, async () => {
      const result = await runSimulation({ ...PROFILE, seed: replay, echo: env.SIM_TRACE === '1' });
      if (result.violations.length > 0)
        console.log(report([result], { profile: env.SIM_PROFILE, traceLines: Number.POSITIVE_INFINITY }));
      else console.log(`seed ${replay}: ${JSON.stringify(result.stats)}\n${result.scenario}`);
      expect(result.violations).toEqual([]);
    });
    return;
  }

  it('replays a seed exactly: same faults, same trace, same outcome', async () => {
    const [a, b] = [await runSimulation({ seed: BASE + 7 }), await runSimulation({ seed: BASE + 7 })];
    expect(b.trace.lines).toEqual(a.trace.lines);
    expect(b.violations).toEqual(a.violations);
    expect(a.stats.calls).toBeGreaterThan(0);
  });

  it(`holds every invariant over the first half of ${SEEDS} seeds`, { timeout: 600_000 }, async () => {
    const failing = await checkSeeds(halfOfSeeds(0), (f) => report(f, { profile: env.SIM_PROFILE }));
    expect(failing).toEqual([]);
  });
});
