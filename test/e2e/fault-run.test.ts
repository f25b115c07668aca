import { afterAll, describe, expect, it } from 'vitest';
import { entryKey } from '../../functions/api/jobs.js';
import {
  configureStandIn,
  createJob,
  resultsJsonl,
  stack,
  standInStats,
  waitForJob,
} from '../helpers/e2e.js';

/**
 * The fault run: 10,000 items while 20% of Gemini calls fail in every way upstream fails — 429 with
 * details and without (capacity), 500, 503, timeouts, malformed bodies and bodies cut off halfway —
 * on top of the e2e Cloud Tasks delivering 5% of tasks twice, and a function instance killed twice
 * mid-run. Every fault is transient, so every item must end succeeded, exactly once: counts and
 * result lines agree, every key once and in order, and no item was answered by Gemini twice (a
 * delivered answer is never asked for again) but for answers a kill cut off before they were stored.
 *
 * Why 20%: each fault costs an item one of the e2e queue's 8 attempts, and an item whose every
 * attempt fails is recorded failed, by design. At 30% that is 0.3⁸ × 10,000 ≈ 0.66 items a run on
 * average, so the run failed about every other time (1–3 items); at 20% it is 0.026.
 */
const MODEL = 'gemini-e2e-faultrun';
const N = Number(process.env.FAULT_RUN_ITEMS ?? 10_000);
const SHARES = {
  quotaShare: 0.03,
  capacityShare: 0.03,
  internalShare: 0.04,
  unavailableShare: 0.04,
  timeoutShare: 0.02,
  malformedShare: 0.02,
  truncatedShare: 0.02,
};

describe('the fault run', () => {
  afterAll(async () => {
    // The stand-in deep-merges its configuration: every share is set back to 0 by name.
    const off = Object.fromEntries(Object.keys(SHARES).map((k) => [k, 0]));
    await configureStandIn({ faults: { byModel: { [MODEL]: off } } });
  });

  it(`ends ${N} items exactly once while 20% of Gemini calls fail`, async () => {
    // Arrange
    expect(Object.values(SHARES).reduce((a, b) => a + b, 0)).toBeCloseTo(0.2, 6);
    await configureStandIn({ faults: { byModel: { [MODEL]: SHARES } } });
    const before = (await standInStats()).models[MODEL];
    const requests = Array.from({ length: N }, (_, i) => ({ key: `f${i}`, prompt: `fault run item ${i}` }));

    // Act: run the job, killing a function instance when a third and two thirds of it are done.
    const id = await createJob({ model: MODEL, mode: 'realtime', requests });
    const kills: number[] = [];
    for (const share of [1 / 3, 2 / 3]) {
      await waitForJob(id, 600_000, (j) => j.counts.total - j.counts.pending >= N * share);
      kills.push(Date.now());
      process.kill(stack().functionsPid, 'SIGUSR2');
    }
    const job = await waitForJob(id, 600_000);
    const lines = await resultsJsonl(id);
    const stats = (await standInStats()).models[MODEL]!;

    // Assert: terminal exactly once, counts and lines agree, in input order. No item failed (a failed
    // one is shown with its error).
    expect(lines.filter((l) => !('response' in l))).toEqual([]);
    expect(job).toMatchObject({
      status: 'succeeded',
      counts: { total: N, succeeded: N, failed: 0, cancelled: 0, pending: 0 },
    });
    expect(lines).toHaveLength(N);
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(lines.every((l, i) => entryKey(l) === `f${i}` && 'response' in l)).toBe(true);
    // Every kind of fault happened, and Gemini never answered an item twice.
    const faults = stats.faults;
    for (const kind of ['500', '503', 'timeout', 'malformed', 'truncated'])
      expect(faults[kind] ?? 0, kind).toBeGreaterThan(0);
    expect(stats.rejected429 - (before?.rejected429 ?? 0)).toBeGreaterThan(0);
    // An answer Gemini gave again was one a kill cut off before it was stored (the stand-in may finish
    // writing to a socket whose peer died a moment before it learns so: hence the 2 s).
    const seen = new Set((before?.answeredAgainDetails ?? []).map((d) => `${d.prompt}@${d.againMs}`));
    const again = stats.answeredAgainDetails.filter((d) => !seen.has(`${d.prompt}@${d.againMs}`));
    const cutByKill = (d: { firstMs: number; againMs: number }) =>
      kills.some((k) => d.firstMs - k < 2000 && d.againMs > k);
    expect(again.filter((d) => !cutByKill(d))).toEqual([]);
    expect(stats.answeredAgain - (before?.answeredAgain ?? 0)).toBe(again.length);
  }, 660_000);
});
