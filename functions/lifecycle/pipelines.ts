import type { JobView } from '../core/jobs.js';
import type { Logger } from '../platform/logger.js';
import type { ItemRef, StoredOutcome } from '../platform/store/items.js';
import type { createJobFinisher } from './finish.js';
import type { LifecycleDeps } from './lifecycle.js';
import { createPipelineAdvance } from './pipeline-advance.js';
import { createPipelineJobs } from './pipeline-jobs.js';

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
  const pipeline = {
    ...pipelineJobs,
    ...createPipelineAdvance(deps, {
      settle: parts.settle,
      itemEnded: async (job, index, log: Logger) => {
        // As a worker does for its items (worker/run-item.ts `checksCompletion`): the last few
        // items check whether the job is done; the finish watcher and the reconciler do the rest.
        if (index < job.total - Math.max(8, Math.ceil(job.total * 0.005))) return;
        if ((await finisher.finishIfDone(job.id, log)) === 'finished')
          await pipelineJobs.settleUnitJobsOf(job, log);
      },
    }),
  };
  return {
    pipeline,
    /** Cancels the job (./finish.ts); a pipeline job's unit jobs are cancelled with it. */
    async cancel(jobId: string): Promise<{ view: JobView; changed: boolean } | undefined> {
      const result = await finisher.cancel(jobId);
      const job = result && (await deps.stores.jobs.get(jobId));
      if (job?.pipeline) await pipelineJobs.settleUnitJobsOf(job);
      return result;
    },
  };
}
