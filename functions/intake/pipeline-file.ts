import type { PipelineFields } from '../api/pipeline.js';
import { describePipelineProblems } from '../api/pipeline-fields.js';
import type { RequestedMode } from '../core/batch.js';
import type { JobSpec, NewItem } from '../core/jobs.js';
import { type PipelineSpec, parsePipeline, unitJobId } from '../core/pipeline.js';
import { routePipeline } from '../core/pipeline-route.js';
import type { Quotas } from '../core/quotas.js';
import { firstStepUnits, pipelineJobParts } from '../ingest/pipeline-job.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { UnitJobDraft } from '../lifecycle/pipeline-jobs.js';
import type { Logger } from '../platform/logger.js';
import type { FileHead } from './file-head.js';

/*
 * A bucket file with a pipeline header (core/bucket-header.ts) run by the pipeline engine, as
 * `POST /jobs` with `steps` runs (ingest/validate-pipeline.ts, ingest/pipeline-job.ts): the header's
 * steps checked by the engine's own check (templates, cycles, models), the job routed realtime
 * whatever its size (or batch when its metadata says so: `pipelineFileRoute`), each chunk of items stored with its step-0 units, and the job committed with its
 * unit jobs. What differs from the API is only that the items arrive a chunk at a time, and that bad
 * lines are items born failed: those get no unit (they never run), as an item that ends at an earlier
 * step gets none of the later steps'.
 */

/** The lifecycle calls a pipeline file makes. */
export type PipelineFileLifecycle = Pick<
  Lifecycle,
  'storeItems' | 'pipeline' | 'startEnqueue' | 'finishIfDone' | 'getJob'
>;

/**
 * The header's pipeline resolved by the engine (core/pipeline.ts `parsePipeline`, as at submit), or
 * the problem that refuses the file: named by the header's line and the field (`line 1: pipeline
 * header: steps[1].prompt: …`), as a bad header already is. A file whose metadata asks for `flex`
 * is refused too, and one asking for `batch` when a model of its steps takes no batch jobs.
 */
export function filePipeline(
  fields: PipelineFields,
  headerLine: number,
  mode: RequestedMode,
  model: string,
  quotas: Quotas,
): { spec: PipelineSpec } | { problem: string } {
  if (mode === 'flex') {
    return {
      problem: `object metadata mode: "${mode}" is not offered for pipelines yet (use "realtime", "batch" or "auto")`,
    };
  }
  const parsed = parsePipeline(fields.steps ?? [], fields.onStepError, model, quotas);
  if ('spec' in parsed) {
    const route = pipelineFileRoute(mode, parsed.spec, quotas);
    return 'problem' in route ? { problem: `object metadata mode: ${route.problem}` } : parsed;
  }
  return {
    problem: `line ${headerLine}: pipeline header: ${describePipelineProblems(parsed.problems.slice(0, 20))}`,
  };
}

/**
 * A pipeline file's route: the Batch API when its metadata says `mode: batch` (every step a batch
 * per model, core/pipeline-route.ts), else realtime whatever its size (its step-0 units are stored
 * for the queues as its chunks are read, before its size is known).
 */
export function pipelineFileRoute(mode: RequestedMode, pipeline: PipelineSpec, quotas: Quotas) {
  return routePipeline(mode === 'batch' ? 'batch' : 'realtime', 0, pipeline, quotas);
}

/**
 * What a file is: a pipeline (its header's steps resolved by `filePipeline`) or an ordinary job, and
 * how its chunks of items are stored; or the problem that refuses it.
 */
export function fileKind(
  jobId: string,
  head: Pick<FileHead, 'pipeline' | 'headerLine'>,
  mode: RequestedMode,
  model: string,
  deps: { lifecycle: PipelineFileLifecycle; quotas: Quotas },
): { pipeline?: PipelineSpec; store: (chunk: NewItem[]) => Promise<void> } | { problem: string } {
  if (!head.pipeline) return { store: (chunk) => deps.lifecycle.storeItems(jobId, chunk) };
  const resolved = filePipeline(head.pipeline, head.headerLine ?? 1, mode, model, deps.quotas);
  if ('problem' in resolved) return resolved;
  // A batch pipeline's step 0 is made and staged by the tick, as its later steps are
  // (lifecycle/pipeline-batch.ts): only the items are stored here.
  if (mode === 'batch')
    return { pipeline: resolved.spec, store: (chunk) => deps.lifecycle.storeItems(jobId, chunk) };
  return { pipeline: resolved.spec, store: pipelineChunkStore(jobId, resolved.spec, deps.lifecycle) };
}

/**
 * How a pipeline file's chunk of items is stored: the items (the pipeline job's), then each branch of
 * step 0's units of the items that will run (not the lines born failed), in that branch's unit job.
 * Idempotent as `storeItems` is: a redelivered event writes the same documents again.
 */
export function pipelineChunkStore(jobId: string, pipeline: PipelineSpec, lifecycle: PipelineFileLifecycle) {
  return async (chunk: NewItem[]): Promise<void> => {
    await lifecycle.storeItems(jobId, chunk);
    const runnable = chunk.filter((item) => !item.error);
    if (runnable.length === 0) return;
    await Promise.all(
      pipeline.steps[0]!.branches.map((_, m) =>
        lifecycle.storeItems(unitJobId(jobId, 0, m), firstStepUnits(pipeline, m, runnable)),
      ),
    );
  };
}

/**
 * The pipeline job a file makes and its unit jobs (ingest/pipeline-job.ts), the units of step 0
 * being stored already. Its `paths` stay the file's: the lines born failed took no path.
 */
export function pipelineFileParts(
  spec: JobSpec,
  pipeline: PipelineSpec,
  quotas: Quotas,
): { spec: JobSpec; unitJobs: UnitJobDraft[] } {
  const parts = pipelineJobParts(spec, pipeline, [], quotas);
  // A batch pipeline's items that run take the batch path (the file's count them as realtime).
  const paths =
    spec.paths && spec.mode === 'batch'
      ? { realtime: 0, batch: spec.paths.realtime + spec.paths.batch }
      : spec.paths;
  return { spec: { ...parts.spec, ...(paths ? { paths } : {}) }, unitJobs: parts.unitJobs };
}

/**
 * Starts a committed pipeline file's job as ingest starts one (step 0's unit jobs, and the pipeline's
 * finish watcher). A file whose every line is bad has nothing to run: it is finished at once, and
 * its unit jobs with it (the reconciler would, later).
 */
export async function startPipelineFile(
  jobId: string,
  parts: { spec: JobSpec; unitJobs: UnitJobDraft[] },
  lifecycle: PipelineFileLifecycle,
  log: Logger,
): Promise<void> {
  if ((parts.spec.paths?.realtime ?? 0) + (parts.spec.paths?.batch ?? 0) > 0) {
    await lifecycle.pipeline.startUnitJobs(jobId, parts.unitJobs, lifecycle.startEnqueue);
    return;
  }
  if ((await lifecycle.finishIfDone(jobId, log)) !== 'finished') return;
  const job = await lifecycle.getJob(jobId);
  if (job) await lifecycle.pipeline.settleUnitJobsOf(job, log);
}
