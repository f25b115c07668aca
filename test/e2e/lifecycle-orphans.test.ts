import { afterAll, describe, expect, it } from 'vitest';
import { entryKey } from '../../functions/api/jobs.js';
import { queueIdForModel } from '../../functions/core/quotas.js';
import {
  configureStandIn,
  createJob,
  frontFault,
  resultsJsonl,
  standInStats,
  waitForJob,
} from '../helpers/e2e.js';

/**
 * Items no task will deliver, through the local cloud (issue 17, scenario 1): Gemini answers 503,
 * so every delivery releases its item for the queue to retry; then Cloud Run's front refuses every
 * delivery of the model's queue (429, as at max instances) for longer than the queue retries them,
 * so Cloud Tasks deletes the tasks after their last attempt, the worker never having seen them.
 * The items stay pending with no lease and no task; the reconciler's sweep finds them past their
 * due time and gives them new tasks. The job ends with every answer right and no 429 from Gemini.
 */
const MODEL = 'gemini-e2e-orphans';
const QUEUE = queueIdForModel(MODEL);
const N = 6;
/** Longer than the e2e queue's retries (8 attempts, backoffs up to 2 s: about 9 s). */
const FAULT_SECONDS = 20;

describe('items whose tasks never reached the worker', () => {
  // The stand-in deep-merges its configuration: a share ends only when set to 0.
  afterAll(async () => {
    await frontFault(QUEUE, 429, 0);
    await configureStandIn({ faults: { byModel: { [MODEL]: { unavailableShare: 0 } } } });
  });

  it('end with every answer right when the front refuses deliveries past the retry budget', async () => {
    // Arrange: Gemini unavailable for the model, so the first deliveries release their items.
    const before = (await standInStats()).models[MODEL];
    await configureStandIn({ faults: { byModel: { [MODEL]: { unavailableShare: 1 } } } });
    const requests = Array.from({ length: N }, (_, i) => ({ key: `o${i}`, prompt: `orphan ${i}` }));
    const t0 = Date.now();

    // Act: once every item was refused by Gemini once, the front refuses the rest of the retries.
    const id = await createJob({ model: MODEL, mode: 'realtime', requests });
    await until(async () => (await faults503()) - (before?.faults['503'] ?? 0) >= N, 20_000);
    await frontFault(QUEUE, 429, FAULT_SECONDS);
    await configureStandIn({ faults: { byModel: { [MODEL]: { unavailableShare: 0 } } } });
    const job = await waitForJob(id, 80_000);
    const lines = await resultsJsonl(id);
    const stats = (await standInStats()).models[MODEL]!;

    // Assert: every item answered, in order; the sweep, not the queue, brought the items back.
    expect(job).toMatchObject({
      status: 'succeeded',
      counts: { total: N, succeeded: N, failed: 0, cancelled: 0, pending: 0 },
    });
    expect(job.reconciled.orphans).toBeGreaterThan(0);
    expect(lines.map(entryKey)).toEqual(requests.map((r) => r.key));
    lines.forEach((line, i) => {
      expect('response' in line && JSON.stringify(line.response)).toContain(`echo: orphan ${i}`);
    });
    expect(stats.rejected429 - (before?.rejected429 ?? 0)).toBe(0);
    expect(stats.answeredAgain - (before?.answeredAgain ?? 0)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(75_000);
  }, 120_000);
});

async function faults503(): Promise<number> {
  return (await standInStats()).models[MODEL]?.faults['503'] ?? 0;
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}
