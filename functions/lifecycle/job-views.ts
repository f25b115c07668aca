import type { StepView } from '../api/pipeline.js';
import { toJobView } from '../core/job-view.js';
import { type CallbackView, isTerminalJob, type JobRecord, type JobView } from '../core/jobs.js';
import type { Totals } from '../core/totals.js';
import type { BatchApiStores, Stores } from '../platform/store/index.js';
import { batchViewOf } from './create.js';

/**
 * Jobs as clients see them (`GET /jobs/{id}`, `GET /jobs`), from the job's record, its counters, its
 * batches, its callback's outbox record and, for a pipeline, its steps' unit jobs.
 */
export interface JobViewsDeps {
  stores: Pick<Stores, 'jobs' | 'counters'>;
  /** The Batch API path's records (batch jobs show their batches in the view). */
  batch?: BatchApiStores;
}

/** What the view takes from the rest of the lifecycle: the callback's delivery and a pipeline's steps. */
export interface JobViewParts {
  callbackView: (jobId: string) => Promise<CallbackView | undefined>;
  stepViews: (job: JobRecord) => Promise<StepView[]>;
  /** The jobs whose batches a job shows: its own, or a batch pipeline's unit jobs (a batch per step and model). */
  runJobIds: (job: JobRecord) => string[];
}

export function createJobViews(deps: JobViewsDeps, parts: JobViewParts) {
  const { jobs, counters } = deps.stores;

  const totals = async (job: JobRecord): Promise<Totals> =>
    job.final ?? (await counters.totals(job.id, job.total, job.counterShards, job.extraCounters));

  /** A job's view; undefined when there is no such job. */
  async function view(jobId: string): Promise<JobView | undefined> {
    const job = await jobs.get(jobId);
    if (!job) return undefined;
    const batch = deps.batch;
    const runs =
      job.mode === 'batch' && batch
        ? (await Promise.all(parts.runJobIds(job).map((id) => batch.runs.listForJob(id)))).flat()
        : undefined;
    // Items a batch sent back to the queues took the realtime path after all (units: not items).
    const rerouted = job.pipeline ? 0 : (runs?.reduce((n, r) => n + r.rerouted, 0) ?? 0);
    const paths = job.paths && {
      realtime: job.paths.realtime + rerouted,
      batch: job.paths.batch - rerouted,
    };
    // A job's callback has its outbox record once the job has ended.
    const callback =
      job.callbackUrl && isTerminalJob(job.status) ? await parts.callbackView(jobId) : undefined;
    const base = toJobView(
      { ...job, ...(paths ? { paths } : {}) },
      await totals(job),
      runs?.map(batchViewOf),
      callback,
    );
    // Which limits its calls hit: model → quotaId → 429s, when there were any.
    const quota429s = await counters.quota429s(jobId);
    const steps = job.pipeline ? { steps: await parts.stepViews(job) } : {};
    return Object.keys(quota429s).length > 0 ? { ...base, ...steps, quota429s } : { ...base, ...steps };
  }

  return {
    view,

    /** Jobs newest first (one owner's, or all), as views; see `JobsStore.listRecent`. */
    async listJobs(options: { owner?: string; limit: number; after?: string }) {
      const page = await jobs.listRecent(options);
      const views = await Promise.all(page.jobs.map((j) => view(j.id)));
      // A pipeline's unit jobs are part of it, not jobs of their own.
      return {
        jobs: views.filter((v, n): v is JobView => v !== undefined && !page.jobs[n]!.unitOf),
        ...(page.next ? { next: page.next } : {}),
      };
    },
  };
}
