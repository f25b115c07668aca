import { counterShardsFor, type JobSpec, type NewItem } from '../core/jobs.js';
import { type PipelineSpec, unitItem, unitJobId } from '../core/pipeline.js';
import type { Quotas } from '../core/quotas.js';
import type { UnitJobDraft } from '../lifecycle/pipeline-jobs.js';

/**
 * The units of the first step's branch `m` for `items` (made from the inputs alone): what a unit
 * job of step 0 holds from the start. A bucket file's items, stored a chunk at a time, get theirs
 * chunk by chunk the same way.
 */
export function firstStepUnits(pipeline: PipelineSpec, m: number, items: readonly NewItem[]): NewItem[] {
  const step = pipeline.steps[0]!;
  const branch = step.branches[m]!;
  return items.map((item) => unitItem(item, step, branch, {}));
}

/**
 * A pipeline job as it is stored (core/pipeline.ts): the job itself, whose items are the inputs and
 * whose model is its first step's (first) model, and one unit job per (step, branch) on that
 * branch's model. Step 0's unit jobs hold their units from the start (made from the inputs alone)
 * and are enqueued as ordinary jobs; later steps' units are made as items reach them. Counts come
 * from `spec.total`: a bucket file passes no `items` (its step-0 units are stored chunk by chunk with
 * `firstStepUnits`, intake/pipeline-file.ts).
 */
export function pipelineJobParts(
  spec: JobSpec,
  pipeline: PipelineSpec,
  items: readonly NewItem[],
  quotas: Quotas,
): { spec: JobSpec; unitJobs: UnitJobDraft[] } {
  const model = pipeline.steps[0]!.branches[0]!.model;
  const unitJobs = pipeline.steps.flatMap((step, n) =>
    step.branches.map((branch, m) => ({
      spec: {
        id: unitJobId(spec.id, n, m),
        model: branch.model,
        // A batch pipeline's unit jobs are batch jobs (step 0's staged at submit, ./stage-batch.ts;
        // later steps' once every item's step before has ended, lifecycle/pipeline-batch.ts).
        mode: spec.mode === 'batch' ? ('batch' as const) : ('realtime' as const),
        ...(spec.mode === 'batch' ? { onBatchFailure: spec.onBatchFailure ?? 'realtime' } : {}),
        total: spec.total,
        source: spec.source,
        ...(spec.owner ? { owner: spec.owner } : {}),
        counterShards: counterShardsFor(quotas.models[branch.model]!.rpm),
        // Until it is staged, a batch unit job has nothing for the queues (nothing to enqueue).
        paths:
          spec.mode === 'batch' ? { realtime: 0, batch: spec.total } : { realtime: spec.total, batch: 0 },
        ...(spec.cache === false ? { cache: false as const } : {}),
        unitOf: { jobId: spec.id, step: n, branch: m },
      },
      items: n === 0 ? firstStepUnits(pipeline, m, items) : [],
    })),
  );
  return {
    spec: {
      ...spec,
      model,
      counterShards: counterShardsFor(quotas.models[model]!.rpm),
      paths: spec.mode === 'batch' ? { realtime: 0, batch: spec.total } : { realtime: spec.total, batch: 0 },
      pipeline,
    },
    unitJobs,
  };
}
