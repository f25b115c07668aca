/** The second half of the default world's seeds (./sim.test.ts runs the first half and says how). */
import { describe, expect, it } from 'vitest';
import { report } from './report.js';
import { checkSeeds, halfOfSeeds, REPLAY, SEEDS } from './seeds.js';

describe.skipIf(REPLAY !== undefined)('seeded fault simulation, second half', () => {
  it(`holds every invariant over the second half of ${SEEDS} seeds`, { timeout: 600_000 }, async () => {
    const failing = await checkSeeds(halfOfSeeds(1), (f) => report(f, { profile: process.env.SIM_PROFILE }));
    expect(failing).toEqual([]);
  });
});
