import { describe, expect, it } from 'vitest';
import { parseQuotas } from '../../../functions/core/quotas.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { SPEND_NOTICE_START } from '../../../functions/core/spend-pace.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { createTwoStepPipeline } from '../../helpers/pipelines.js';
import { testQuotas } from '../../helpers/test-quotas.js';

// The planner draws each item's expected cost against the project's spend limit (a rolling window
// shared by every job and model) and orders a page so same-prefix items go back to back.

const T0 = Date.parse('2024-07-01T19:00:00Z');
const FLASH = 'gemini-2.5-flash';

let now = T0;

async function setup(prompts: string[], extra: Record<string, unknown>, config?: Record<string, unknown>) {
  now = T0;
  const base = testQuotas();
  const quotas = parseQuotas({
    ...base,
    ...extra,
    models: {
      ...base.models,
      'gemini-2.5-flash': { ...base.models['gemini-2.5-flash'], implicitCacheMinTokens: 1024 },
    },
  });
  const world = fakeWorld({
    quotas,
    logger: createLogger({ destination: createLogCapture().stream }),
    clock: () => now,
  });
  const normalized = normalizeJobRequest(
    { prompts, mode: 'realtime', ...(config ? { config } : {}) },
    quotas,
  );
  await world.lifecycle.create(
    { id: 'job-spend', model: normalized.model, mode: 'realtime', total: prompts.length, source: 'api' },
    normalized.items,
  );
  const job = (await world.lifecycle.getJob('job-spend'))!;
  /** The job's tasks in the order they were created, and when each is planned to go. */
  const planned = () =>
    [...world.tasks.itemTasks.values()].map((t) => ({ index: t.index, plannedMs: t.plannedMs ?? 0 }));
  return { ...world, job, planned };
}

describe('planner: spend pacing', () => {
  it('spreads a job costlier than the limit over windows, and says so on the job', async () => {
    // 100 prompts of 1,000 output tokens at $2.50/M: $0.0025 each, $0.25 in all, against $0.05 per 10 s.
    const prompts = Array.from({ length: 100 }, (_, i) => `prompt ${i}`);
    const { planner, job, planned, lifecycle } = await setup(
      prompts,
      { spendPer10MinUsd: 0.05, spendPacing: { windowSeconds: 10, expectedOutputTokens: 1000 }, headroom: 1 },
      { maxOutputTokens: 1000 },
    );

    await planner.enqueuePage(job, 0);

    const times = planned().map((t) => t.plannedMs);
    expect(times).toHaveLength(100);
    // Every 10 s (plus the slack) holds at most 0.05 / 0.0025 = 20 items.
    for (const at of times)
      expect(times.filter((t) => t >= at && t < at + 10_000).length).toBeLessThanOrEqual(20);
    expect(Math.max(...times) - T0).toBeGreaterThan(4 * 10_000);
    expect((await lifecycle.getJob(job.id))!.notice).toMatch(new RegExp(`^${SPEND_NOTICE_START}`));
  });

  it('leaves a job within the limit as fast as its RPM, with no notice', async () => {
    const prompts = Array.from({ length: 10 }, (_, i) => `prompt ${i}`);
    const { planner, job, planned, lifecycle } = await setup(prompts, { spendPer10MinUsd: 100 });
    await planner.enqueuePage(job, 0);
    expect(Math.max(...planned().map((t) => t.plannedMs)) - T0).toBeLessThan(2000);
    expect((await lifecycle.getJob(job.id))!.notice).toBeNull();
  });
});

describe('planner: order for the implicit cache', () => {
  const A = 'Shared context A. '.repeat(300);
  const B = 'Shared context B. '.repeat(300);
  const alternating = Array.from({ length: 20 }, (_, i) => `${i % 2 ? B : A} question ${i}`);

  it('plans items sharing a long prefix back to back, keeping their indexes', async () => {
    const { planner, job, planned } = await setup(alternating, {});
    await planner.enqueuePage(job, 0);
    const order = planned().map((t) => t.index);
    expect(order).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
  });

  it('plans every item once when a page ordered by prefix reaches the plan horizon', async () => {
    // Two prefixes alternating, paced by spend so that a page does not fit in 10 minutes.
    const prompts = Array.from({ length: 60 }, (_, i) => `${i % 2 ? B : A} question ${i}`);
    const { planner, job, planned, tasks } = await setup(
      prompts,
      {
        spendPer10MinUsd: 0.01,
        spendPacing: { windowSeconds: 300, expectedOutputTokens: 1000 },
        headroom: 1,
      },
      { maxOutputTokens: 1000 },
    );
    let through = 0;
    for (let round = 0; round < 200; round++) {
      const step = await planner.enqueuePage(job, through);
      through = step.through;
      if (step.done) break;
      now = step.resumeAtMs ?? now + 60_000;
    }
    const indexes = planned().map((t) => t.index);
    expect(new Set(indexes).size).toBe(60);
    expect(tasks.itemTasks.size).toBe(60);
    expect(through).toBe(60);
  });

  it('keeps input order when ordering is off', async () => {
    const { planner, job, planned } = await setup(alternating, { implicitCacheOrder: false });
    await planner.enqueuePage(job, 0);
    expect(planned().map((t) => t.index)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});

describe('planner: spend pacing of pipeline units', () => {
  it("draws a pipeline's units on the project's spend ledger, after what ordinary jobs planned there", async () => {
    // Arrange: $0.0025 an item or unit, $0.05 per 10 s; an ordinary job fills the first window.
    const prompts = Array.from({ length: 20 }, (_, i) => `prompt ${i}`);
    const { planner, job, planned, lifecycle, tasks } = await setup(
      prompts,
      { spendPer10MinUsd: 0.05, spendPacing: { windowSeconds: 10, expectedOutputTokens: 1000 }, headroom: 1 },
      { maxOutputTokens: 1000 },
    );
    await planner.enqueuePage(job, 0);
    const firstWindow = Math.max(...planned().map((t) => t.plannedMs));
    const quotas = testQuotas();
    const normalized = normalizeJobRequest(
      { prompts, mode: 'realtime', config: { maxOutputTokens: 1000 } },
      quotas,
    );
    const unitJob = await createTwoStepPipeline({ lifecycle }, quotas, FLASH, normalized.items);

    // Act: step b's units of every item, planned as items reach it.
    await planner.planUnits({ id: unitJob, model: FLASH }, normalized.items);

    // Assert: the window is spent: every unit waits for the next one, 20 a window.
    const units = [...tasks.itemTasks.values()]
      .filter((t) => t.jobId === unitJob)
      .map((t) => t.plannedMs ?? 0);
    expect(units).toHaveLength(20);
    expect(Math.min(...units)).toBeGreaterThan(firstWindow);
    expect(Math.min(...units) - T0).toBeGreaterThanOrEqual(10_000);
    expect((await lifecycle.getJob(unitJob))!.notice).toMatch(new RegExp(`^${SPEND_NOTICE_START}`));
  });
});
