/**
 * The seeded fault simulation's other worlds (./sim.test.ts runs the default one): several items a
 * task, adaptive rates, and the orphan sweep off, which must leave an item pending. A replay
 * (SIM_SEED) runs in ./sim.test.ts only.
 */
import { describe, expect, it } from 'vitest';
import { replayCommand, report } from './report.js';
import { PROFILES } from './scenario.js';
import { BASE, PROFILE, REPLAY, range, runSeeds, SEEDS } from './seeds.js';
import { runSimulation, type SimResult } from './world.js';

const env = process.env;

describe.skipIf(REPLAY !== undefined)('seeded fault simulation, other worlds', () => {
  // Several items a task (half of the seeds above draw k > 1 too): every seed here does, with
  // transient Gemini faults and duplicates, so tasks whose items end differently are retried.
  it('holds every invariant with several items a task', { timeout: 600_000 }, async () => {
    const seeds = range(BASE, Math.max(50, Math.floor(SEEDS / 5)));
    let grouped = 0;
    const failures: SimResult[] = [];
    for (const seed of seeds) {
      const result = await runSimulation({ ...PROFILES['multi-item']!, seed });
      grouped += result.trace.lines.filter((l) => / items [^ ]+\/\d+,/.test(l)).length;
      if (result.violations.length > 0) failures.push(result);
    }
    if (failures.length > 0) console.log(report(failures, { profile: 'multi-item' }));
    expect(failures.map((f) => f.seed)).toEqual([]);
    expect(grouped, 'no task carried several items').toBeGreaterThan(seeds.length);
  });

  // Models whose rate adapts (Vertex AI, rpm "auto"): the same invariants while 429s lower the
  // rate on the ledger and every late send takes a slot at it.
  it('holds every invariant with adaptive rates over 300 seeds', { timeout: 300_000 }, async () => {
    const failures = await runSeeds(range(BASE, 300), { ...PROFILE, adaptive: true });
    if (failures.length > 0) console.log(report(failures, { profile: env.SIM_PROFILE }));
    expect(failures.map((f) => f.seed)).toEqual([]);
  });

  // The reconciler sweeps only expired leases unless it also sweeps orphans (pending items no task
  // will deliver): with the sweep off, a worker outage longer than the queue's retry budget after a
  // release must leave some item pending forever, and the simulation must find it.
  it('finds an item no task will deliver when the orphan sweep is off (issue 17, scenario 1)', async () => {
    let found: SimResult | undefined;
    for (const seed of range(BASE, 200)) {
      const result = await runSimulation({ ...PROFILES['orphan-sweep-off']!, seed });
      if (result.violations.some((v) => v.invariant === 'job-terminal:orphaned-items')) {
        found = result;
        break;
      }
    }
    expect(found, 'no seed left an item pending with the sweep off').toBeDefined();
    console.log(
      `orphan sweep off: seed ${found!.seed} leaves an item pending (${replayCommand(found!.seed, 'orphan-sweep-off')})`,
    );
  });
});
