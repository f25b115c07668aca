import {
  type ItemError,
  type ItemRecord,
  isTerminalJob,
  itemIdForIndex,
  type JobRecord,
  type NewItem,
  type Usage,
} from '../core/jobs.js';
import {
  type PipelineSpec,
  pipelineOutcome,
  stepEntry,
  stepError,
  type UnitEnd,
  unitItem,
  unitJobId,
} from '../core/pipeline.js';
import { type BranchAnswer, branchAnswerOf } from '../core/pipeline-template.js';
import type { Logger } from '../platform/logger.js';
import type { ItemRef, StoredOutcome } from '../platform/store/items.js';
import type { LifecycleDeps } from './lifecycle.js';

/**
 * How an item moves through its pipeline (part of the lifecycle). `advance` reads where the item
 * stands (its units of every step, one read) and does the one thing due: make and plan the next
 * step's units once every branch of the step before has ended, or record the item's outcome once
 * its last step has ended (or a step failed, with `onStepError: "fail"`). It is idempotent: units
 * are created if absent, the item's outcome is written on the version read. So it may run any
 * number of times, from any unit's delivery that ended one (`unitEnded`) and from the reconciler's
 * sweep of a pipeline's items (`heal`): a crash between "unit recorded" and "next step planned"
 * is healed by the next call.
 */

/** What advancing needs of the planner: the units of a step are planned as they are made. */
export interface UnitPlanning {
  planUnits(unitJob: Pick<JobRecord, 'id' | 'model'>, units: NewItem[]): Promise<void>;
  /**
   * A batch pipeline's staging of step `stagingStep` (./pipeline-batch.ts): that step's units are
   * made for every item that reached it (even one made before, the same again), and handed to
   * `planUnits`, which gathers them for the step's batch. Absent: a batch pipeline's later steps
   * are not made (they wait for their staging).
   */
  stagingStep?: number;
}

/**
 * What one advance did: made (or handed over) the units of a step, found the item waiting for a
 * unit still running, found a later step of a batch pipeline waiting for its staging (`deferred`),
 * recorded the item (`ended`), or nothing (the item or job is not live).
 */
export type AdvanceResult = 'made' | 'waiting' | 'deferred' | 'ended' | 'none';

/** What the advance needs of the rest of the lifecycle. */
export interface AdvanceHelpers {
  /** Writes an item's outcome on its version (retried in place); false when someone else won. */
  settle: (ref: ItemRef, outcome: StoredOutcome) => Promise<boolean>;
  /** The item's pipeline is over: the job may be too. */
  itemEnded: (job: JobRecord, index: number, log: Logger) => Promise<void>;
}

/** A unit as read: its model, and the record (undefined: not made yet). */
interface UnitRead {
  model: string;
  unit: ItemRecord | undefined;
}

export function createPipelineAdvance(
  deps: Pick<LifecycleDeps, 'stores' | 'objects'>,
  helpers: AdvanceHelpers,
) {
  const { jobs, items } = deps.stores;

  /** The units of every step of one item, in step order (one round trip). */
  const readUnits = async (job: JobRecord, spec: PipelineSpec, itemId: string): Promise<UnitRead[][]> => {
    const refs = spec.steps.flatMap((step, n) =>
      step.branches.map((_, m) => ({ jobId: unitJobId(job.id, n, m), itemId })),
    );
    const read = await items.getMany(refs);
    let at = 0;
    return spec.steps.map((step) => step.branches.map((b) => ({ model: b.model, unit: read[at++] })));
  };

  /** An ended unit as the pipeline reads it (its response from the bucket when it was too big). */
  const endOf = async (model: string, unit: ItemRecord): Promise<UnitEnd> => {
    if (unit.state === 'succeeded') {
      const response = unit.responseObject ? await deps.objects.getJson(unit.responseObject) : unit.response;
      return { model, state: 'succeeded', response };
    }
    return {
      model,
      state: unit.state as 'failed' | 'cancelled',
      ...(unit.error ? { error: unit.error } : {}),
    };
  };

  /**
   * Makes and plans the units of step `n` of the item that are not there yet. A batch pipeline's
   * later step is made only by its staging, which takes every unit of the step (`stagingStep`).
   */
  const makeStep = async (
    job: JobRecord,
    spec: PipelineSpec,
    item: ItemRecord,
    n: number,
    reads: UnitRead[],
    earlier: Record<string, BranchAnswer[]>,
    planner: UnitPlanning,
  ): Promise<AdvanceResult> => {
    const staging = planner.stagingStep === n;
    // A batch pipeline's step is made by its staging only (step 0's at submit for POST /jobs).
    if (job.mode === 'batch' && !staging) return 'deferred';
    const step = spec.steps[n]!;
    await Promise.all(
      step.branches.map(async (branch, m) => {
        if (reads[m]!.unit && !staging) return;
        const unit = unitItem(item, step, branch, earlier);
        await planner.planUnits({ id: unitJobId(job.id, n, m), model: branch.model }, [unit]);
      }),
    );
    return 'made';
  };

  /** Records the item's outcome: its steps, the last one's answer or the failed step's error. */
  const finishItem = async (
    job: JobRecord,
    spec: PipelineSpec,
    item: ItemRecord,
    ran: UnitEnd[][],
    used: ItemRecord[],
    log: Logger,
  ) => {
    const steps: Record<string, unknown> = {};
    ran.forEach((ends, n) => {
      steps[spec.steps[n]!.name] = stepEntry(ends);
    });
    const usage = sumUsage(used);
    const costUsd = used.reduce((sum, u) => sum + (u.costUsd ?? 0), 0);
    const outcome = tooBig(steps) ?? pipelineOutcome(spec, ran);
    const ref = { jobId: job.id, itemId: item.id, version: item.version, shards: job.counterShards };
    const written = await helpers.settle(
      ref,
      outcome.state === 'succeeded'
        ? { state: 'succeeded', response: outcome.response, steps, usage, costUsd }
        : { state: 'failed', error: outcome.error, ...(tooBig(steps) ? {} : { steps }), usage, costUsd },
    );
    if (!written) return;
    log.info(
      { event: 'pipeline.item_ended', jobId: job.id, itemId: item.id, state: outcome.state },
      'item ended',
    );
    await helpers.itemEnded(job, item.index, log);
  };

  const advance = {
    /** Moves item `index` of pipeline job `jobId` on (see above); a no-op when nothing is due. */
    async advance(jobId: string, index: number, planner: UnitPlanning, log: Logger): Promise<AdvanceResult> {
      const itemId = itemIdForIndex(index);
      const [item, job] = await items.getWithJob(jobId, itemId);
      if (!item || !job?.pipeline || isTerminalJob(job.status) || item.state !== 'pending') return 'none';
      const spec = job.pipeline;
      // Its units are claimed in their unit jobs: the first one to end marks the pipeline running.
      if (job.status === 'queued') await jobs.markRunning(job.id, job.version);
      const reads = await readUnits(job, spec, itemId);
      const ran: UnitEnd[][] = [];
      const used: ItemRecord[] = [];
      const earlier: Record<string, BranchAnswer[]> = {};
      for (let n = 0; n < spec.steps.length; n++) {
        const step = spec.steps[n]!;
        const stepReads = reads[n]!;
        if (planner.stagingStep === n || stepReads.some((r) => !r.unit))
          return makeStep(job, spec, item, n, stepReads, earlier, planner);
        if (stepReads.some((r) => r.unit!.state === 'pending')) return 'waiting';
        const ends = await Promise.all(stepReads.map((r) => endOf(r.model, r.unit!)));
        ran.push(ends);
        used.push(...stepReads.map((r) => r.unit!));
        if (spec.onStepError === 'fail' && stepError(step.name, ends)) break;
        earlier[step.name] = ends.map((e) =>
          e.state === 'succeeded' ? branchAnswerOf(e.model, e.response, step.json) : { model: e.model },
        );
      }
      await finishItem(job, spec, item, ran, used, log);
      return 'ended';
    },

    /**
     * A unit of unit job `unitJob` ended: its item moves on. Never throws: a failure here is
     * logged, and the reconciler's sweep of the pipeline (`heal`) moves the item on later.
     */
    async unitEnded(unitJob: JobRecord, index: number, planner: UnitPlanning, log: Logger): Promise<void> {
      if (!unitJob.unitOf) return;
      try {
        await advance.advance(unitJob.unitOf.jobId, index, planner, log);
      } catch (err) {
        log.warn(
          {
            event: 'pipeline.advance_failed',
            jobId: unitJob.unitOf.jobId,
            index,
            err: (err as Error).message,
          },
          'could not move the item to its next step; the reconciler will',
        );
      }
    },

    /** `unitEnded` for a unit known by its job's id (a duplicate delivery); nothing for other jobs. */
    async unitDone(jobId: string, index: number, planner: UnitPlanning, log: Logger): Promise<void> {
      if (!/-s\d+b\d+$/.test(jobId)) return;
      const unitJob = await jobs.get(jobId);
      if (unitJob) await advance.unitEnded(unitJob, index, planner, log);
    },

    /**
     * The reconciler's sweep of a live pipeline job: every pending item is advanced (what crashed
     * between a unit's outcome and the next step is made now). How many items it looked at.
     */
    async heal(job: JobRecord, planner: UnitPlanning, log: Logger): Promise<number> {
      let afterId: string | undefined;
      let seen = 0;
      for (;;) {
        const page = await items.list(job.id, { ...(afterId ? { afterId } : {}), limit: 500 });
        for (const item of page) {
          if (item.state !== 'pending') continue;
          seen++;
          await advance.advance(job.id, item.index, planner, log);
        }
        if (page.length < 500) return seen;
        afterId = page[page.length - 1]!.id;
      }
    },
  };
  return advance;
}

/**
 * Most an item's steps may weigh together: its outcome is one document (Firestore's limit is 1 MiB),
 * every step's outcome in it and the last step's answer a second time (the line's `response`).
 */
export const MAX_STEPS_BYTES = 450_000;

/**
 * An item whose steps' answers are too big to record together fails, saying so (each answer is
 * still in its unit); undefined when they fit.
 */
function tooBig(steps: Record<string, unknown>): { state: 'failed'; error: ItemError } | undefined {
  const bytes = Buffer.byteLength(JSON.stringify(steps));
  if (bytes <= MAX_STEPS_BYTES) return undefined;
  return {
    state: 'failed',
    error: {
      code: 413,
      status: 'RESOURCE_EXHAUSTED',
      message: `The answers of this item's steps weigh ${bytes} bytes together, more than the ${MAX_STEPS_BYTES} one result holds; ask for shorter answers (maxOutputTokens).`,
    },
  };
}

function sumUsage(units: ItemRecord[]): Usage {
  const sum: Record<string, number> = { promptTokens: 0, outputTokens: 0 };
  for (const u of units) {
    for (const [k, v] of Object.entries(u.usage ?? {})) if (typeof v === 'number') sum[k] = (sum[k] ?? 0) + v;
  }
  return sum as unknown as Usage;
}
