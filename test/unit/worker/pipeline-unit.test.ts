import { describe, expect, it } from 'vitest';
import { itemIdForIndex } from '../../../functions/core/jobs.js';
import { parsePipeline, unitJobId } from '../../../functions/core/pipeline.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { pipelineJobParts } from '../../../functions/ingest/pipeline-job.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { handleTask, type TaskDelivery } from '../../../functions/worker/handler.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';
import { workerDepsOn } from '../../helpers/worker-world.js';

/*
 * A pipeline's unit delivered to the worker like any item (worker/run-item.ts): once its outcome is
 * written, its item moves on (the next step's unit is made and planned), and a duplicate delivery
 * of a unit already done moves it on too (the delivery that wrote it may have died first).
 */
const JOB = 'pipe-w';

async function world() {
  const quotas = testQuotas();
  const now = () => Date.parse('2024-07-01T19:00:00Z');
  const logger = createLogger({ destination: createLogCapture().stream });
  const w = fakeWorld({ quotas, logger, clock: now });
  const normalized = normalizeJobRequest({ prompts: ['hello'] }, quotas);
  const parsed = parsePipeline(
    [
      { name: 'a', prompt: 'A {{input}}' },
      { name: 'b', model: 'gemini-2.5-pro', prompt: 'B {{a}}' },
    ],
    undefined,
    normalized.model,
    quotas,
  );
  if (!('spec' in parsed)) throw new Error('bad pipeline');
  const parts = pipelineJobParts(
    { id: JOB, model: normalized.model, mode: 'realtime', total: 1, source: 'api' },
    parsed.spec,
    normalized.items,
    quotas,
  );
  await w.lifecycle.create(parts.spec, normalized.items, undefined, { unitJobs: parts.unitJobs });
  const deps = workerDepsOn(w, { quotas, logger, now });
  const delivery = (jobId: string): TaskDelivery => ({
    queueName: 'q',
    taskName: `q/tasks/${jobId}`,
    retryCount: 0,
    executionCount: 0,
    payload: { kind: 'item', jobId, itemId: itemIdForIndex(0) },
  });
  const nextUnit = async () =>
    (await w.db.stores.items.getWithJob(unitJobId(JOB, 1, 0), itemIdForIndex(0)))[0];
  return { ...w, deps, delivery, nextUnit };
}

describe('a pipeline unit in the worker', () => {
  it("moves its item on once its outcome is written: the next step's unit is made on its own model", async () => {
    // Arrange
    const w = await world();

    // Act
    const reply = await handleTask(w.delivery(unitJobId(JOB, 0, 0)), w.deps);

    // Assert
    expect(reply.body.outcome).toBe('succeeded');
    expect(w.gemini.calls.map((c) => [c.model, c.request.contents[0]?.parts[0]?.text])).toEqual([
      ['gemini-2.5-flash', 'A hello'],
    ]);
    expect((await w.nextUnit())?.request.contents[0]?.parts[0]?.text).toBe('B an answer');
    expect(
      [...w.tasks.itemTasks.values()].some(
        (t) => t.jobId === unitJobId(JOB, 1, 0) && t.model === 'gemini-2.5-pro',
      ),
    ).toBe(true);
  });

  it('moves the item on from a duplicate delivery of a unit already done', async () => {
    // Arrange: the unit's outcome is written, and its delivery died before moving the item on.
    const w = await world();
    const [unit, unitJob] = await w.db.stores.items.getWithJob(unitJobId(JOB, 0, 0), itemIdForIndex(0));
    await w.db.stores.items.settle(
      { jobId: unitJob!.id, itemId: unit!.id, version: unit!.version, shards: unitJob!.counterShards },
      { state: 'succeeded', response: { candidates: [{ content: { parts: [{ text: 'done before' }] } }] } },
    );

    // Act
    const reply = await handleTask(w.delivery(unitJobId(JOB, 0, 0)), w.deps);

    // Assert
    expect(reply.body.outcome).toBe('duplicate');
    expect(w.gemini.calls).toHaveLength(0);
    expect((await w.nextUnit())?.request.contents[0]?.parts[0]?.text).toBe('B done before');
  });
});
