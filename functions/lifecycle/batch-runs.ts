import { type BatchPart, batchDisplayName } from '../core/batch.js';
import type { JobSpec } from '../core/jobs.js';
import type { LifecycleDeps } from './lifecycle.js';

/**
 * Stores a batch job's runs (one per part, created if absent: a repeat stores nothing twice), and
 * names the counter documents its parts' totals go to (`JobSpec.extraCounters`): what an ordinary
 * batch job is created with (./create.ts), and a batch pipeline's unit jobs (./pipeline-jobs.ts,
 * ./pipeline-batch.ts).
 */
export async function storeRuns(
  deps: Pick<LifecycleDeps, 'batch'>,
  spec: Pick<JobSpec, 'id' | 'model'>,
  runs: readonly BatchPart[],
): Promise<string[]> {
  if (runs.length === 0) return [];
  if (!deps.batch) throw new Error('batch jobs need the batch stores');
  await deps.batch.runs.createMany(
    runs.map((r) => ({
      ...r,
      jobId: spec.id,
      model: spec.model,
      displayName: batchDisplayName(spec.id, r.part),
    })),
  );
  return runs.map((r) => partCounterId(r.part));
}

/** The counter document of a job's batch `part` (see `JobSpec.extraCounters`). */
export function partCounterId(part: number): string {
  return `batch-p${part}`;
}
