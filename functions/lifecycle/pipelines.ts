import type { JobView } from '../core/jobs.js';
import type { Logger } from '../platform/logger.js';
import type { ItemRef, StoredOutcome } from '../platform/store/items.js';
import type { createJobFinisher } from './finish.js';
import type { LifecycleDeps } from './lifecycle.js';
import { createPipelineAdvance, type UnitPlanning } from './pipeline-advance.js';
import { createPipelineBatch } from './pipeline-batch.js';
import { createPipelineJobs } from './pipeline-jobs.js';

/** Items a batch's collect moves on at once. */
const UNITS_AT_ONCE = 16;

/** The planner of the Batch API path's advances: a batch pipeline's later steps are staged. */
const NO_PLANNER: UnitPlanning = {
  planUnits: () => Promise.reject(new Error('a batch pipeline plans its later steps when it stages them')),
};

/**
 * The lifecycle's pipeline part, put together: its unit jobs (./pipeline-jobs.ts), how an item
 * moves through its steps (./pipeline-advance.ts), and the cancel that takes the unit jobs along.
 */
export function createPipelines(
  deps: LifecycleDeps,
  clock: () => number,
  parts: {
    /** The lifecycle's outcome write (retried in place). */
    settle: (ref: ItemRef, outcome: StoredOutcome) => Promise<boolean>;
    finisher: ReturnType<typeof createJobFinisher>;
  },
) {
  const { finisher } = parts;
  const pipelineJobs = createPipelineJobs(deps, clock);
  const advance = createPipelineAdvance(deps, {
    settle: parts.settle,
    itemEnded: async (job, index, log: Logger) => {
      // As a worker does for its items (worker/run-item.ts `checksCompletion`): the last few
      // items check whether the job is done; the finish watcher and the reconciler do the rest.
      if (index < job.total - Math.max(8, Math.ceil(job.total * 0.005))) return;
      if ((await finisher.finishIfDone(job.id, log)) === 'finished')
        await pipelineJobs.settleUnitJobsOf(job, log);
    },
  });
  const pipeline = {
    ...pipelineJobs,
    ...advance,
    ...createPipelineBatch(deps, advance),
    /**
     * Units of unit job `jobId` written by the Batch API path (./batch-outcomes.ts): their items
     * move on, a few at a time. A batch pipeline's later steps are staged, never planned one by
     * one, so no planner is needed (one asked anyway fails the advance, which is logged and healed).
     */
    async unitsSettled(jobId: string, itemIds: string[], log: Logger): Promise<void> {
      const unitJob = /-s\d+b\d+$/.test(jobId) ? await deps.stores.jobs.get(jobId) : undefined;
      if (!unitJob?.unitOf) return;
      for (let at = 0; at < itemIds.length; at += UNITS_AT_ONCE)
        await Promise.all(
          itemIds
            .slice(at, at + UNITS_AT_ONCE)
            .map((id) => advance.unitEnded(unitJob, Number(id), NO_PLANNER, log)),
        );
    },
  };
  return {
    pipeline,
    /** Cancels the job (./finish.ts); a pipeline job's unit jobs are cancelled with it. */
    async cancel(jobId: string): Promise<{ view: JobView; changed: boolean } | undefined> {
      // A job without steps has no unit jobs to turn.
      const result = await finisher.cancel(jobId, (job) => pipelineJobs.turnUnitJobs(job));
      const job = result && (await deps.stores.jobs.get(jobId));
      if (job?.pipeline) await pipelineJobs.settleUnitJobsOf(job);
      return result;
    },
  };
}
