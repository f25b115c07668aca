import { describe, expect, it } from 'vitest';
import { itemIdForIndex } from '../../../functions/core/jobs.js';
import { parsePipeline, unitJobId } from '../../../functions/core/pipeline.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { pipelineJobParts } from '../../../functions/ingest/pipeline-job.js';
import { stageFirstStep } from '../../../functions/ingest/stage-batch.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

/*
 * A pipeline with `mode: "batch"` (lifecycle/pipeline-batch.ts): step 0's unit jobs are staged at
 * submit as ordinary batch jobs; step 1's is staged by the tick (`stageSteps`) only once every
 * item's step 0 has ended, its units made from the answers, in batches, none on the queues; and
 * units the Batch API path writes move their items on (`unitsSettled`, the hook batch-outcomes.ts
 * calls), recording an item once its last step has ended.
 */
const JOB = 'pipe-b';
const S0 = unitJobId(JOB, 0, 0);
const S1 = unitJobId(JOB, 1, 0);

const answer = (text: string) => ({ candidates: [{ content: { parts: [{ text }] } }] });

async function world(onStepError?: 'continue') {
  const quotas = testQuotas();
  const now = () => Date.parse('2024-07-01T19:00:00Z');
  const logger = createLogger({ destination: createLogCapture().stream });
  const w = fakeWorld({ quotas, logger, clock: now, batch: true });
  const normalized = normalizeJobRequest({ prompts: ['alpha', 'beta', 'gamma'] }, quotas);
  const parsed = parsePipeline(
    [
      { name: 'a', prompt: 'A {{input}}' },
      { name: 'b', model: 'gemini-2.5-pro', prompt: 'B {{a}}' },
    ],
    onStepError,
    normalized.model,
    quotas,
  );
  if (!('spec' in parsed)) throw new Error('bad pipeline');
  const spec = { id: JOB, model: normalized.model, mode: 'batch' as const, total: 3, source: 'api' };
  const parts = pipelineJobParts(spec, parsed.spec, normalized.items, quotas);
  const unitJobs = await stageFirstStep(parts.unitJobs, { objects: w.objects, quotas });
  await w.lifecycle.create(parts.spec, normalized.items, undefined, { unitJobs });
  const { stores } = w.db;
  /** Writes the outcome of unit `index` of unit job `jobId` as the Batch API path does, and hooks it. */
  const settle = async (jobId: string, index: number, outcome: 'ok' | 'fail') => {
    const [unit, unitJob] = await stores.items.getWithJob(jobId, itemIdForIndex(index));
    await stores.items.settle(
      { jobId, itemId: unit!.id, version: unit!.version, shards: unitJob!.counterShards },
      outcome === 'ok'
        ? { state: 'succeeded', response: answer(`${jobId} said ${index}`) }
        : { state: 'failed', error: { code: 400, status: 'INVALID_ARGUMENT', message: 'no' } },
    );
    await w.lifecycle.pipeline.unitsSettled(jobId, [itemIdForIndex(index)], logger);
  };
  const closeRuns = async (jobId: string) => {
    for (const run of await w.batch!.runs.listForJob(jobId))
      await w.batch!.runs.update(run, { state: 'collected' });
  };
  const stage = async () =>
    w.lifecycle.pipeline.stageSteps((await stores.jobs.get(JOB))!, w.planner, quotas, logger);
  return { ...w, stores, settle, closeRuns, stage, logger };
}

describe('a pipeline through the Batch API', () => {
  it("stages step 0's unit job at submit as a batch job, its units in one batch", async () => {
    // Arrange, Act
    const w = await world();

    // Assert
    const unitJob = await w.stores.jobs.get(S0);
    expect(unitJob).toMatchObject({ mode: 'batch', staged: { object: `staging/${S0}.jsonl` } });
    expect(unitJob?.paths).toEqual({ realtime: 0, batch: 3 });
    expect((await w.batch!.runs.listForJob(S0)).map((r) => [r.part, r.items])).toEqual([[0, 3]]);
    expect(w.objects.objects.get(`staging/${S0}.jsonl`)).toContain('A alpha');
    expect(w.tasks.itemTasks.size).toBe(0);
  });

  it('stages step 1 only once every item has ended step 0, from their answers, with no task', async () => {
    // Arrange
    const w = await world();
    await w.closeRuns(S0);
    await w.settle(S0, 0, 'ok');
    await w.settle(S0, 1, 'ok');

    // Act: item 2's step 0 has not ended yet; the reconciler's sweep (a real planner) plans nothing
    await w.lifecycle.pipeline.heal((await w.stores.jobs.get(JOB))!, w.planner, w.logger);
    const early = await w.stage();
    const unitsEarly = await w.stores.items.list(S1, { limit: 10 });
    await w.settle(S0, 2, 'ok');
    const staged = await w.stage();

    // Assert
    expect(early).toBeUndefined();
    expect(unitsEarly).toHaveLength(0);
    expect(staged).toBe(1);
    const unitJob = await w.stores.jobs.get(S1);
    expect(unitJob).toMatchObject({ staged: { object: `staging/${S1}.jsonl` }, extraCounters: ['batch-p0'] });
    const units = await w.stores.items.list(S1, { limit: 10 });
    expect(units.map((u) => [u.batchPart, u.request.contents[0]?.parts[0]?.text])).toEqual([
      [0, `B ${S0} said 0`],
      [0, `B ${S0} said 1`],
      [0, `B ${S0} said 2`],
    ]);
    expect((await w.batch!.runs.listForJob(S1)).map((r) => [r.model, r.items])).toEqual([
      ['gemini-2.5-pro', 3],
    ]);
    expect(w.tasks.itemTasks.size).toBe(0);
    // Staging again changes nothing.
    expect(await w.stage()).toBeUndefined();
  });

  it('waits while a step-0 batch is still open, and leaves a hole for an item that ended at step 0', async () => {
    // Arrange: item 1's step 0 fails (onStepError "fail": the item ends there)
    const w = await world();
    await w.settle(S0, 0, 'ok');
    await w.settle(S0, 1, 'fail');
    await w.settle(S0, 2, 'ok');

    // Act
    const whileOpen = await w.stage();
    await w.closeRuns(S0);
    const staged = await w.stage();

    // Assert
    expect(whileOpen).toBeUndefined();
    expect(staged).toBe(1);
    expect((await w.stores.items.list(S1, { limit: 10 })).map((u) => u.index)).toEqual([0, 2]);
    const lines = w.objects.objects.get(`staging/${S1}.jsonl`)!.trim().split('\n');
    expect(lines[1]).toBe('null');
    expect((await w.batch!.runs.listForJob(S1)).map((r) => [r.fromIndex, r.toIndex, r.items])).toEqual([
      [0, 3, 2],
    ]);
    expect((await w.stores.items.getWithJob(JOB, itemIdForIndex(1)))[0]?.state).toBe('failed');
  });

  it("records an item once the Batch API path's collect wrote its last unit", async () => {
    // Arrange
    const w = await world();
    for (const i of [0, 1, 2]) await w.settle(S0, i, 'ok');
    await w.closeRuns(S0);
    await w.stage();

    // Act: the Batch API path collects step 1's batch, which answered item 0 only
    const part = { jobId: S1, part: 0, fromIndex: 0, toIndex: 3, items: 3 };
    async function* responses() {
      yield JSON.stringify({ key: itemIdForIndex(0), response: answer(`${S1} said 0`) });
    }
    const pricing = { price: { inputPerMillion: 1, outputPerMillion: 1 }, discount: 0.5 };
    await w.lifecycle.batchOutcomes!.settleLines(part, responses(), pricing, w.logger);

    // Assert
    const [item] = await w.stores.items.getWithJob(JOB, itemIdForIndex(0));
    expect(item?.state).toBe('succeeded');
    expect(item?.steps).toMatchObject({
      a: { model: 'gemini-2.5-flash', response: answer(`${S0} said 0`) },
      b: { model: 'gemini-2.5-pro', response: answer(`${S1} said 0`) },
    });
    expect((await w.stores.items.getWithJob(JOB, itemIdForIndex(1)))[0]?.state).toBe('pending');
  });
});
