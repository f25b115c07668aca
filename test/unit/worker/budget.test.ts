import { describe, expect, it } from 'vitest';
import { BUDGET_READ_MS, budgetAllows, itemCostEstimate } from '../../../functions/core/budget.js';
import { itemIdForIndex } from '../../../functions/core/jobs.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { itemTaskId } from '../../../functions/platform/task-queue.js';
import { handleTask, type TaskDelivery } from '../../../functions/worker/handler.js';
import { FakeGemini, fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';
import { workerDepsOn } from '../../helpers/worker-world.js';

const JOB = 'budget-job';
const T0 = Date.parse('2026-12-06T12:00:00Z');
const QUEUE = 'projects/fanout-local/locations/us-central1/queues/fanout-gemini-2-5-flash';
// The fake answers 12 prompt tokens at $0.30 and 5 output tokens at $2.50 per million.
const ANSWER_USD = (12 * 0.3 + 5 * 2.5) / 1e6;

/** A realtime job of `n` prompts with `maxCostUsd`, and a worker whose clock the test moves. */
async function setup(n: number, maxCostUsd: number | undefined, config?: Record<string, unknown>) {
  const quotas = testQuotas();
  const capture = createLogCapture();
  const logger = createLogger({ destination: capture.stream });
  const clock = { ms: T0 };
  const world = fakeWorld({ quotas, logger, clock: () => clock.ms });
  const gemini = new FakeGemini();
  const prompts = Array.from({ length: n }, (_, i) => `Prompt ${i}.`);
  const job = normalizeJobRequest({ prompts, ...(config ? { config } : {}) }, quotas);
  await world.lifecycle.create(
    {
      id: JOB,
      model: job.model,
      mode: 'realtime',
      total: n,
      source: 'api',
      ...(maxCostUsd !== undefined ? { maxCostUsd } : {}),
    },
    job.items,
  );
  const deps = workerDepsOn(world, { quotas, logger, gemini, now: () => clock.ms });
  return { world, gemini, deps, capture, clock };
}

const delivery = (index: number): TaskDelivery => ({
  queueName: QUEUE,
  taskName: `${QUEUE}/tasks/${itemTaskId(JOB, itemIdForIndex(index))}`,
  retryCount: 0,
  executionCount: 0,
  payload: { kind: 'item', jobId: JOB, itemId: itemIdForIndex(index) },
});

describe('core/budget', () => {
  it('lets an item through only while spent + in flight + its estimate stays within the budget', () => {
    expect(budgetAllows({ maxCostUsd: 1, spentUsd: 0.5, inFlightUsd: 0.25 }, 0.25)).toBe(true);
    expect(budgetAllows({ maxCostUsd: 1, spentUsd: 0.5, inFlightUsd: 0.25 }, 0.26)).toBe(false);
    expect(budgetAllows({ maxCostUsd: 1, spentUsd: 0.8, inFlightUsd: 0 }, 0.21)).toBe(false);
  });

  it('estimates input, the output cap when set, and never less than the average answer so far', () => {
    const price = { inputPerMillion: 1, outputPerMillion: 10 };
    const plain = { estimatedTokens: 1000, request: {} };
    const capped = { estimatedTokens: 1000, request: { generationConfig: { maxOutputTokens: 100 } } };

    expect(itemCostEstimate(plain, price, 1)).toBeCloseTo(0.001, 12);
    expect(itemCostEstimate(capped, price, 1)).toBeCloseTo(0.002, 12);
    expect(itemCostEstimate(capped, price, 0.5)).toBeCloseTo(0.001, 12);
    expect(itemCostEstimate(plain, price, 1, 0.005)).toBe(0.005);
  });
});

describe('a job with maxCostUsd', () => {
  it('stops sending once the next answer would pass the budget: the rest end cancelled, reason budget', async () => {
    // Arrange: room for two answers and a half.
    const { world, gemini, deps, capture } = await setup(5, ANSWER_USD * 2.5);

    // Act
    for (let i = 0; i < 5; i++) await handleTask(delivery(i), deps);

    // Assert
    expect(gemini.calls).toHaveLength(2);
    expect(world.db.item(JOB, itemIdForIndex(2))).toMatchObject({
      state: 'cancelled',
      error: { code: 499, status: 'CANCELLED', reason: 'budget' },
    });
    const view = await world.lifecycle.view(JOB);
    expect(view?.counts).toMatchObject({ succeeded: 2, cancelled: 3, pending: 0 });
    expect(view?.status).toBe('succeeded');
    expect(view?.budget).toEqual({
      maxCostUsd: ANSWER_USD * 2.5,
      spentUsd: expect.closeTo(ANSWER_USD * 2, 12),
      stopped: true,
    });
    expect(view?.notice).toMatch(/Stopped at its budget/);
    expect(capture.events('item.budget_stopped')).toHaveLength(3);
  });

  it('counts the estimates of items in flight: deliveries at once stop where the budget does', async () => {
    // Arrange: each item's estimate holds its output cap (5 tokens), nearly what an answer costs.
    const { gemini, deps, world } = await setup(5, ANSWER_USD * 2, { maxOutputTokens: 5 });

    // Act: five deliveries at once, none finished before the others are admitted.
    await Promise.all([0, 1, 2, 3, 4].map((i) => handleTask(delivery(i), deps)));

    // Assert
    expect(gemini.calls).toHaveLength(2);
    expect((await world.lifecycle.view(JOB))?.counts).toMatchObject({ succeeded: 2, cancelled: 3 });
  });

  it('reads the spent cost from the counters at most once per interval per instance', async () => {
    // Twenty items: the first ones do not check whether the job is done (which reads the counters too).
    const { world, deps, clock } = await setup(20, 1);
    const reads = () => world.db.calls['counters.totals'] ?? 0;

    await handleTask(delivery(0), deps);
    await handleTask(delivery(1), deps);
    const withinInterval = reads();
    clock.ms += BUDGET_READ_MS;
    await handleTask(delivery(2), deps);

    expect(withinInterval).toBe(1);
    expect(reads()).toBe(2);
  });

  it('changes nothing for a job without one', async () => {
    const { world, gemini, deps } = await setup(20, undefined);

    for (let i = 0; i < 3; i++) await handleTask(delivery(i), deps);

    expect(gemini.calls).toHaveLength(3);
    expect(world.db.calls['counters.totals'] ?? 0).toBe(0);
    expect((await world.lifecycle.view(JOB))?.budget).toBeUndefined();
  });
});
