import { describe, expect, it } from 'vitest';
import type { PipelineStep } from '../../../functions/api/pipeline.js';
import { itemIdForIndex } from '../../../functions/core/jobs.js';
import { parsePipeline, unitJobId } from '../../../functions/core/pipeline.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { pipelineJobParts } from '../../../functions/ingest/pipeline-job.js';
import { reconcile } from '../../../functions/lifecycle/reconcile.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

/*
 * How an item moves through its pipeline (lifecycle/pipeline-advance.ts, pipeline-jobs.ts) on the
 * fake stores: a unit's outcome is written as a worker writes it, then the item is advanced.
 */
const JOB = 'pipe-1';
const T0 = Date.parse('2024-07-01T19:00:00Z');
const FLASH = 'gemini-2.5-flash';
const PRO = 'gemini-2.5-pro';

async function pipelineWorld(
  steps: PipelineStep[],
  options: { onStepError?: 'continue'; prompts?: string[] } = {},
) {
  const quotas = testQuotas();
  let now = T0;
  const clock = () => now;
  const capture = createLogCapture();
  const logger = createLogger({ destination: capture.stream });
  const world = fakeWorld({ quotas, logger, clock });
  const normalized = normalizeJobRequest(
    { model: FLASH, prompts: options.prompts ?? ['first', 'second'] },
    quotas,
  );
  const parsed = parsePipeline(steps, options.onStepError, FLASH, quotas);
  if (!('spec' in parsed)) throw new Error(JSON.stringify(parsed.problems));
  const parts = pipelineJobParts(
    { id: JOB, model: FLASH, mode: 'realtime', total: normalized.items.length, source: 'api' },
    parsed.spec,
    normalized.items,
    quotas,
  );
  await world.lifecycle.create(parts.spec, normalized.items, undefined, { unitJobs: parts.unitJobs });
  const items = world.db.stores.items;
  return {
    ...world,
    logger,
    advanceClock: (ms: number) => {
      now += ms;
    },
    clock,
    /** Writes a unit's outcome as a worker does (on its version, counted once). */
    async endUnit(step: number, branch: number, index: number, text: string | { fail: string }) {
      const jobId = unitJobId(JOB, step, branch);
      const [unit, unitJob] = await items.getWithJob(jobId, itemIdForIndex(index));
      if (!unit || !unitJob) throw new Error(`no unit ${jobId}/${index}`);
      const ref = { jobId, itemId: unit.id, version: unit.version, shards: unitJob.counterShards };
      const outcome =
        typeof text === 'string'
          ? {
              state: 'succeeded' as const,
              response: { candidates: [{ content: { role: 'model', parts: [{ text }] } }] },
              usage: { promptTokens: 10, outputTokens: 5 },
              costUsd: 0.001,
            }
          : {
              state: 'failed' as const,
              error: { code: 400, status: 'INVALID_ARGUMENT', message: text.fail },
            };
      expect(await items.settle(ref, outcome)).toBe(true);
    },
    unit: async (step: number, branch: number, index: number) =>
      (await items.getWithJob(unitJobId(JOB, step, branch), itemIdForIndex(index)))[0],
    item: async (index: number) => (await items.getWithJob(JOB, itemIdForIndex(index)))[0],
    advance: (index: number) => world.lifecycle.pipeline.advance(JOB, index, world.planner, logger),
  };
}

describe('a pipeline item moving through its steps', () => {
  it("makes and plans the next step's unit only once every branch of the step before has ended", async () => {
    // Arrange
    const w = await pipelineWorld([
      { name: 'ask', models: [FLASH, PRO], prompt: 'Q {{input}}' },
      { name: 'judge', model: PRO, prompt: 'J {{ask.1}} / {{ask}}' },
    ]);

    // Act
    await w.endUnit(0, 0, 0, 'flash says');
    await w.advance(0);
    const afterOne = await w.unit(1, 0, 0);
    await w.endUnit(0, 1, 0, 'pro says');
    await w.advance(0);
    const judge = await w.unit(1, 0, 0);

    // Assert
    expect(afterOne).toBeUndefined();
    expect(judge?.request.contents[0]?.parts[0]?.text).toBe(
      `J pro says / Answer 1 (${FLASH}):\nflash says\n\nAnswer 2 (${PRO}):\npro says`,
    );
    expect(judge?.dueByMs).toBeGreaterThan(T0);
    expect([...w.tasks.itemTasks.values()].filter((t) => t.jobId === unitJobId(JOB, 1, 0))).toMatchObject([
      { model: PRO, itemId: '000000000' },
    ]);
  });

  it("stores the next step's unit before its task: a delivery at once finds it", async () => {
    // Arrange: a queue that delivers a task the moment it exists, as one with room does, and a
    // store whose writes take longer than a task's creation.
    const w = await pipelineWorld([{ name: 'a' }, { name: 'b', prompt: 'B {{a}}' }]);
    const items = w.db.stores.items;
    const createMany = items.createMany.bind(items);
    items.createMany = async (...args) => {
      for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
      return createMany(...args);
    };
    const found: boolean[] = [];
    w.tasks.onCreate = (jobId, task) => {
      found.push(w.db.item(jobId, task.itemId) !== undefined);
    };
    await w.endUnit(0, 0, 0, 'A answer');
    await w.endUnit(0, 0, 1, 'A answer');

    // Act
    await Promise.all([w.advance(0), w.advance(1)]);

    // Assert
    expect(found).toEqual([true, true]);
  });

  it('makes the next step once however often the item is advanced', async () => {
    // Arrange
    const w = await pipelineWorld([{ name: 'a' }, { name: 'b', prompt: 'B {{a}}' }]);
    await w.endUnit(0, 0, 1, 'A answer');

    // Act
    await Promise.all([w.advance(1), w.advance(1)]);
    await w.advance(1);

    // Assert
    const units = await w.db.stores.items.list(unitJobId(JOB, 1, 0), { limit: 10 });
    expect(units.map((u) => u.index)).toEqual([1]);
    expect([...w.tasks.itemTasks.values()].filter((t) => t.jobId === unitJobId(JOB, 1, 0))).toHaveLength(1);
  });

  it('records the item once its last step ended: the steps by name, the last answer, the usage of all', async () => {
    // Arrange
    const w = await pipelineWorld([{ name: 'a' }, { name: 'b', prompt: 'B {{a}}' }], { prompts: ['only'] });
    await w.endUnit(0, 0, 0, 'A answer');
    await w.advance(0);

    // Act
    await w.endUnit(1, 0, 0, 'B answer');
    await w.advance(0);
    const job = await w.lifecycle.view(JOB);
    const [line] = await w.lifecycle.listOutcomes(JOB, { limit: 10 });

    // Assert
    expect(await w.lifecycle.resultEntry(line!)).toEqual({
      key: '0',
      index: 0,
      steps: {
        a: { model: FLASH, response: expect.anything() },
        b: { model: FLASH, response: expect.anything() },
      },
      response: { candidates: [{ content: { role: 'model', parts: [{ text: 'B answer' }] } }] },
    });
    expect(job).toMatchObject({
      status: 'succeeded',
      counts: { total: 1, succeeded: 1 },
      usage: { promptTokens: 20, outputTokens: 10 },
    });
    expect(job?.steps?.map((s) => s.counts.succeeded)).toEqual([1, 1]);
    // The unit jobs end with their pipeline job.
    expect((await w.db.stores.jobs.get(unitJobId(JOB, 1, 0)))?.status).toBe('succeeded');
  });

  it('ends the item at a failed step, or with continue runs the next step with the failed one empty', async () => {
    // Arrange
    const steps = [{ name: 'a' }, { name: 'b', prompt: 'B <{{a}}>' }];
    const failing = await pipelineWorld(steps, { prompts: ['x'] });
    const going = await pipelineWorld(steps, { prompts: ['x'], onStepError: 'continue' });

    // Act
    await failing.endUnit(0, 0, 0, { fail: 'refused' });
    await failing.advance(0);
    await going.endUnit(0, 0, 0, { fail: 'refused' });
    await going.advance(0);

    // Assert
    expect(await failing.item(0)).toMatchObject({
      state: 'failed',
      error: { code: 400, message: 'step a: refused' },
      steps: { a: { model: FLASH, error: { message: 'refused' } } },
    });
    expect(await failing.unit(1, 0, 0)).toBeUndefined();
    expect((await going.item(0))?.state).toBe('pending');
    expect((await going.unit(1, 0, 0))?.request.contents[0]?.parts[0]?.text).toBe('B <>');
  });

  it('fails an item whose steps are too big to record together, saying so', async () => {
    // Arrange
    const w = await pipelineWorld([{ name: 'a' }], { prompts: ['x'] });
    await w.endUnit(0, 0, 0, 'y'.repeat(500_000));

    // Act
    await w.advance(0);

    // Assert
    expect(await w.item(0)).toMatchObject({
      state: 'failed',
      error: { code: 413, status: 'RESOURCE_EXHAUSTED' },
    });
  });

  it("heals a crash between a unit's outcome and its next step: the reconciler's sweep makes the step", async () => {
    // Arrange: the unit's outcome is written, and its delivery dies before advancing the item.
    const w = await pipelineWorld([{ name: 'a' }, { name: 'b', prompt: 'B {{a}}' }]);
    await w.endUnit(0, 0, 0, 'A answer');
    w.advanceClock(w.stallMs + 1);

    // Act
    await reconcile({
      stores: w.db.stores,
      lifecycle: w.lifecycle,
      planner: w.planner,
      tasks: w.tasks,
      logger: w.logger,
      stallMs: w.stallMs,
      now: w.clock,
    });

    // Assert
    expect((await w.unit(1, 0, 0))?.request.contents[0]?.parts[0]?.text).toBe('B A answer');
    expect(await w.unit(1, 0, 1)).toBeUndefined();
  });

  it('leaves a young unit job without its pipeline job alone (it is stored first), and cancels an old one', async () => {
    // Arrange
    const w = await pipelineWorld([{ name: 'a' }]);
    const orphan = {
      ...(await w.db.stores.jobs.get(unitJobId(JOB, 0, 0)))!,
      unitOf: { jobId: 'gone', step: 0, branch: 0 },
    };

    // Act
    const young = await w.lifecycle.pipeline.settleUnitJob(orphan);
    const youngStatus = (await w.db.stores.jobs.get(orphan.id))?.status;
    w.advanceClock(w.stallMs + 1);
    const old = await w.lifecycle.pipeline.settleUnitJob(orphan);

    // Assert
    expect(young).toBe(true);
    expect(youngStatus).toBe('queued');
    expect(old).toBe(true);
    expect((await w.db.stores.jobs.get(orphan.id))?.status).toBe('cancelled');
    expect((await w.unit(0, 0, 0))?.state).toBe('cancelled');
  });
  it("turns its unit jobs cancelled before it sweeps the pipeline's own items, so no unit is claimed meanwhile", async () => {
    // Arrange
    const w = await pipelineWorld([{ name: 'a' }, { name: 'b', prompt: 'B {{a}}' }]);
    const items = w.db.stores.items;
    const sweep = items.sweepPending.bind(items);
    let unitJobWhileSwept: string | undefined;
    items.sweepPending = async (jobId, outcome) => {
      if (jobId === JOB) unitJobWhileSwept = (await w.db.stores.jobs.get(unitJobId(JOB, 0, 0)))?.status;
      return sweep(jobId, outcome);
    };

    // Act
    await w.lifecycle.cancel(JOB);

    // Assert
    expect(unitJobWhileSwept).toBe('cancelled');
    expect((await w.db.stores.jobs.get(unitJobId(JOB, 0, 0)))?.status).toBe('cancelled');
    expect((await w.unit(0, 0, 0))?.state).toBe('cancelled');
  });
});
