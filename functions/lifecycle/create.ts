import type { BatchView } from '../api/jobs.js';
import type { BatchPart } from '../core/batch.js';
import type { JobSpec, NewItem } from '../core/jobs.js';
import type { BatchRun } from '../platform/store/batch-runs.js';
import { storeRuns } from './batch-runs.js';
import type { LifecycleDeps } from './lifecycle.js';
import { createPipelineJobs, type UnitJobDraft } from './pipeline-jobs.js';

/*
 * How a job comes to exist (part of the lifecycle): its items first, then what it brings besides
 * (batch runs, the count of items born failed), then the job document last, so a visible job is
 * complete and durable, and a crash before that leaves nothing a client can see.
 */

export type CreateResult =
  | { jobId: string; replayed: false }
  | { jobId: string; replayed: true; bodyHash: string };

/** What a job may bring besides its items. */
export interface CreateExtras {
  /** Batch jobs: the batches its batchable items are split into. */
  runs?: BatchPart[];
  /** Bucket jobs: items stored failed from the start (bad lines); counted here, once. */
  bornFailed?: number;
  /** Pipeline jobs: their unit jobs, stored before the job (./pipeline-jobs.ts). */
  unitJobs?: UnitJobDraft[];
}

export { partCounterId } from './batch-runs.js';

/** A batch run as the job view shows it. */
export function batchViewOf(run: BatchRun): BatchView {
  return {
    name: run.batchName,
    state: run.upstream ?? 'STAGED',
    items: run.items,
    stats: run.stats,
    fallback: run.fallback,
    lastError: run.lastError ?? null,
  };
}

/** The creation half of the lifecycle (spread into it). */
export function createJobMaker(deps: LifecycleDeps, clock: () => number) {
  const { jobs, items, counters } = deps.stores;
  const maker = {
    /** A page of a job's items with their requests, in input order (what a re-run is made from). */
    listItems: (jobId: string, options: { afterId?: string; limit: number }) => items.list(jobId, options),

    /** Links a re-run to the job it re-ran; linking again adds nothing. */
    linkRetry: (jobId: string, retryId: string) => jobs.addRetry(jobId, retryId),

    /** Stores items of a job not yet created (a bucket file's are stored a chunk at a time). */
    storeItems: (jobId: string, newItems: NewItem[]) => items.createMany(jobId, newItems),

    /**
     * Stores the items, then the job (a visible job is complete and durable). With an idempotency
     * key already used, nothing new is stored and the earlier job is returned (`replayed`); the
     * caller compares `bodyHash`.
     */
    async create(
      spec: JobSpec,
      newItems: NewItem[],
      idempotency?: { keyId: string; bodyHash: string },
      extras: CreateExtras = {},
    ): Promise<CreateResult> {
      if (idempotency) {
        const existing = await jobs.findIdempotency(idempotency.keyId);
        if (existing) return { jobId: existing.jobId, replayed: true, bodyHash: existing.bodyHash };
      }
      await items.createMany(spec.id, newItems);
      return maker.commit(spec, idempotency, extras);
    },

    /**
     * The last step of creating a job whose items are stored: its batch runs, the count of items
     * born failed (bad bucket lines), then the job itself, so a job is never visible half made.
     */
    async commit(
      spec: JobSpec,
      idempotency?: { keyId: string; bodyHash: string },
      extras: CreateExtras = {},
    ): Promise<CreateResult> {
      const partCounters = await storeRuns(deps, spec, extras.runs ?? []);
      if (extras.bornFailed) await counters.put(spec.id, 'intake', { failed: extras.bornFailed });
      if (extras.unitJobs) await createPipelineJobs(deps, clock).storeUnitJobs(extras.unitJobs);
      const extraCounters = [...(extras.bornFailed ? ['intake'] : []), ...partCounters];
      const stored = await jobs.create(
        { ...spec, ...(extraCounters.length > 0 ? { extraCounters } : {}) },
        clock() + deps.stallMs,
        idempotency,
      );
      if (!stored.created)
        return { jobId: stored.existing.jobId, replayed: true, bodyHash: stored.existing.bodyHash };
      return { jobId: spec.id, replayed: false };
    },
  };
  return maker;
}
