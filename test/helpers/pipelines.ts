import type { NewItem } from '../../functions/core/jobs.js';
import { parsePipeline, unitJobId } from '../../functions/core/pipeline.js';
import type { Quotas } from '../../functions/core/quotas.js';
import { pipelineJobParts } from '../../functions/ingest/pipeline-job.js';
import type { fakeWorld } from './fakes.js';

/**
 * Creates job `id` in `world`: a two-step pipeline on `model` (step a, then step b on a's answer)
 * over `items`; returns the id of step b's unit job, whose units a test plans as items reach it.
 */
export async function createTwoStepPipeline(
  world: Pick<ReturnType<typeof fakeWorld>, 'lifecycle'>,
  quotas: Quotas,
  model: string,
  items: NewItem[],
  id = 'pipe',
): Promise<string> {
  const parsed = parsePipeline([{ name: 'a' }, { name: 'b', prompt: 'B {{a}}' }], undefined, model, quotas);
  if (!('spec' in parsed)) throw new Error('bad pipeline');
  const parts = pipelineJobParts(
    { id, model, mode: 'realtime', total: items.length, source: 'api' },
    parsed.spec,
    items,
    quotas,
  );
  await world.lifecycle.create(parts.spec, items, undefined, { unitJobs: parts.unitJobs });
  return unitJobId(id, 1, 0);
}
