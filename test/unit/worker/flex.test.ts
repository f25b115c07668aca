import { describe, expect, it } from 'vitest';
import type { GenerateContentRequest } from '../../../functions/core/jobs.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import {
  GeminiCallError,
  type GenerateOptions,
  type GenerateResult,
} from '../../../functions/platform/gemini/client.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { itemTaskId } from '../../../functions/platform/task-queue.js';
import { handleTask, type TaskDelivery } from '../../../functions/worker/handler.js';
import { FakeGemini, fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';
import { TEST_WORKER_BOUNDS, workerDepsOn } from '../../helpers/worker-world.js';

const JOB = 'flex-job';
const ITEM = '000000000';
const T0 = Date.parse('2026-12-06T12:00:00Z');
const QUEUE = 'projects/fanout-local/locations/us-central1/queues/fanout-gemini-2-5-flash';
const FLEX_TIMEOUT_MS = 600_000;

/** A Gemini fake that also records the options of each call (tier, timeout). */
class TierGemini extends FakeGemini {
  readonly options: GenerateOptions[] = [];
  served: GenerateResult['servedTier'];
  override async generate(
    model: string,
    request: GenerateContentRequest,
    options?: GenerateOptions,
  ): Promise<GenerateResult> {
    this.options.push(options ?? {});
    const result = await super.generate(model, request);
    return this.served ? { ...result, servedTier: this.served } : result;
  }
}

const shed = () =>
  new GeminiCallError('Gemini answered 503', 503, {
    error: { code: 503, status: 'UNAVAILABLE', message: 'The model is overloaded. Please try again later.' },
  });

/** A job of one item (12 prompt tokens, 5 output tokens answered), in `mode`, created at T0. */
async function setup(mode: 'flex' | 'realtime', deadlineMs?: number, now = T0, priority = false) {
  const quotas = testQuotas();
  const capture = createLogCapture();
  const logger = createLogger({ destination: capture.stream });
  let clockMs = T0;
  const world = fakeWorld({ quotas, logger, clock: () => clockMs });
  const gemini = new TierGemini();
  const job = normalizeJobRequest({ prompts: ['Summarise the report.'] }, quotas);
  await world.lifecycle.create(
    {
      id: JOB,
      model: job.model,
      mode,
      total: 1,
      source: 'api',
      ...(deadlineMs !== undefined ? { deadlineMs } : {}),
      ...(priority ? { priority } : {}),
    },
    job.items,
  );
  clockMs = now;
  const deps = workerDepsOn(
    world,
    { quotas, logger, gemini, now: () => clockMs },
    { leaseMs: FLEX_TIMEOUT_MS + 60_000, geminiFlexTimeoutMs: FLEX_TIMEOUT_MS },
  );
  return { world, gemini, deps, quotas, capture };
}

const delivery = (): TaskDelivery => ({
  queueName: QUEUE,
  taskName: `${QUEUE}/tasks/${itemTaskId(JOB, ITEM)}`,
  retryCount: 0,
  executionCount: 0,
  payload: { kind: 'item', jobId: JOB, itemId: ITEM },
});

// 12 prompt tokens at $0.30 and 5 output tokens at $2.50 per million.
const STANDARD_USD = (12 * 0.3 + 5 * 2.5) / 1e6;

describe('a flex job', () => {
  it("asks Gemini for Flex with Flex's timeout and prices the answer at half", async () => {
    // Arrange
    const { world, gemini, deps } = await setup('flex');
    gemini.served = 'flex';
    // Act
    await handleTask(delivery(), deps);
    // Assert
    expect(gemini.options).toEqual([{ serviceTier: 'flex', timeoutMs: FLEX_TIMEOUT_MS }]);
    const item = world.db.item(JOB, ITEM);
    expect(item).toMatchObject({ state: 'succeeded', tier: 'flex' });
    expect(item?.costUsd).toBeCloseTo(STANDARD_USD / 2, 12);
    expect(item?.standardCostUsd).toBeCloseTo(STANDARD_USD, 12);
    const view = await world.lifecycle.view(JOB);
    expect(view?.tiers).toEqual({ flex: { items: 1, costUsd: expect.closeTo(STANDARD_USD / 2, 12) } });
    expect(view?.savedUsd).toBeCloseTo(STANDARD_USD / 2, 12);
  });

  it('prices the answer at the tier Gemini says served it', async () => {
    const { world, gemini, deps } = await setup('flex');
    gemini.served = 'standard';

    await handleTask(delivery(), deps);

    expect(world.db.item(JOB, ITEM)).toMatchObject({ tier: 'standard' });
    expect(world.db.item(JOB, ITEM)?.costUsd).toBeCloseTo(STANDARD_USD, 12);
    expect((await world.lifecycle.view(JOB))?.savedUsd).toBe(0);
  });

  it('hands a shed item (503) to a new task after the backoff, pending, not failed', async () => {
    // Arrange
    const { world, gemini, deps, quotas, capture } = await setup('flex');
    gemini.failWith(shed());
    // Act
    const reply = await handleTask(delivery(), deps);
    // Assert
    expect(reply).toEqual({ status: 200, body: { outcome: 'handed-over' } });
    expect(world.db.item(JOB, ITEM)).toMatchObject({ state: 'pending', lease: null });
    const handed = [...world.tasks.itemTasks.values()].filter((t) => t.handover !== undefined);
    expect(handed).toHaveLength(1);
    expect(handed[0]?.scheduleMs ?? handed[0]?.plannedMs).toBe(T0 + quotas.serviceTiers.flex.minBackoffMs);
    expect(capture.events('item.handed_over')).toEqual([expect.objectContaining({ reason: 'flex-shed' })]);
  });

  it('never waits past the moment its deadline sends it standard', async () => {
    const quotas = testQuotas();
    const { latencyMs } = quotas.serviceTiers.flex;
    // 5 s of Flex time left: less than the 10 s backoff.
    const { world, gemini, deps } = await setup('flex', T0 + latencyMs + 5_000);
    gemini.failWith(shed());

    await handleTask(delivery(), deps);

    const handed = [...world.tasks.itemTasks.values()].filter((t) => t.handover !== undefined);
    expect(handed[0]?.scheduleMs ?? handed[0]?.plannedMs).toBe(T0 + 5_000);
  });

  it("falls back to standard once the deadline leaves less than Flex's latency", async () => {
    // Arrange: the job's deadline is Flex's latency away, less a second.
    const quotas = testQuotas();
    const { world, gemini, deps } = await setup('flex', T0 + quotas.serviceTiers.flex.latencyMs - 1000);
    // Act
    await handleTask(delivery(), deps);
    // Assert
    expect(gemini.options).toEqual([
      { serviceTier: 'standard', timeoutMs: TEST_WORKER_BOUNDS.geminiTimeoutMs },
    ]);
    expect(world.db.item(JOB, ITEM)).toMatchObject({ state: 'succeeded', tier: 'standard' });
    expect(world.db.item(JOB, ITEM)?.costUsd).toBeCloseTo(STANDARD_USD, 12);
  });

  it("falls back to standard after Flex's default window when the job names no deadline", async () => {
    const quotas = testQuotas();
    const { defaultDeadlineMs, latencyMs } = quotas.serviceTiers.flex;
    const { gemini, deps } = await setup('flex', undefined, T0 + defaultDeadlineMs - latencyMs);

    await handleTask(delivery(), deps);

    expect(gemini.options[0]?.serviceTier).toBe('standard');
  });
});

describe('a realtime job', () => {
  it('asks for no tier, and records its answers as standard', async () => {
    const { world, gemini, deps } = await setup('realtime');

    await handleTask(delivery(), deps);

    expect(gemini.options).toEqual([{ timeoutMs: TEST_WORKER_BOUNDS.geminiTimeoutMs }]);
    expect(world.db.item(JOB, ITEM)).toMatchObject({ tier: 'standard' });
    expect((await world.lifecycle.view(JOB))?.tiers).toEqual({
      standard: { items: 1, costUsd: expect.closeTo(STANDARD_USD, 12) },
    });
  });

  it('retries a 503 as any transient fault (no Flex backoff)', async () => {
    const { world, gemini, deps } = await setup('realtime');
    gemini.failWith(shed());

    const reply = await handleTask(delivery(), deps);

    expect(reply.status).toBe(500);
    expect([...world.tasks.itemTasks.values()].filter((t) => t.handover !== undefined)).toEqual([]);
  });
});

describe('a realtime job routed to Priority', () => {
  it("asks Gemini for Priority with the standard timeout, and prices Priority's answers at 1.8×", async () => {
    const { world, gemini, deps } = await setup('realtime', T0 + 60_000, T0, true);
    gemini.served = 'priority';

    await handleTask(delivery(), deps);

    expect(gemini.options).toEqual([
      { serviceTier: 'priority', timeoutMs: TEST_WORKER_BOUNDS.geminiTimeoutMs },
    ]);
    expect(world.db.item(JOB, ITEM)).toMatchObject({ tier: 'priority' });
    expect(world.db.item(JOB, ITEM)?.costUsd).toBeCloseTo(STANDARD_USD * 1.8, 12);
    expect((await world.lifecycle.view(JOB))?.savedUsd).toBeCloseTo(-STANDARD_USD * 0.8, 12);
  });

  it('prices an answer Gemini served as standard over the Priority cap at standard', async () => {
    const { world, gemini, deps } = await setup('realtime', T0 + 60_000, T0, true);
    gemini.served = 'standard';

    await handleTask(delivery(), deps);

    expect(world.db.item(JOB, ITEM)).toMatchObject({ tier: 'standard' });
    expect(world.db.item(JOB, ITEM)?.costUsd).toBeCloseTo(STANDARD_USD, 12);
  });
});
