import { partLimitsFor } from '../core/batch.js';
import { OPEN_RUN_STATES } from '../core/batch-run.js';
import { STAGING_PREFIX } from '../core/bucket-input.js';
import { isTerminalJob, type JobRecord, type NewItem } from '../core/jobs.js';
import { unitJobId } from '../core/pipeline.js';
import type { Quotas } from '../core/quotas.js';
import { stagedSet } from '../core/staged-set.js';
import type { Logger } from '../platform/logger.js';
import { storeRuns } from './batch-runs.js';
import type { LifecycleDeps } from './lifecycle.js';
import type { createPipelineAdvance, UnitPlanning } from './pipeline-advance.js';

/**
 * A batch pipeline's later steps (part of the lifecycle). Step 0's unit jobs are ordinary batch
 * jobs, staged at submit (ingest/stage-batch.ts). A later step n goes as one batch per branch
 * (model) once every item's step n-1 has ended: until then `advance` makes none of its units
 * (`deferred`), and each scheduler tick (the reconciler's sweep of the live pipeline job) asks
 * `stageSteps` whether the next step is due. When it is, every pending item is advanced with a
 * planner that gathers step n's units instead of sending them (`stagingStep`); if one item is still
 * waiting for its step n-1 (a unit sent back to the queues, or not recorded yet), nothing is
 * stored and a later tick asks again. Otherwise each branch's units are staged as an ordinary
 * batch job's items are (`staging/{unitJob}.jsonl`, parts, runs: core/staged-set.ts), stored with
 * their `batchPart`, the units a batch does not take (media, a JSON schema) planned on the queues,
 * and the unit job marked staged last: a tick that stops halfway redoes it all the same way (the
 * units are made again from the same answers, stored if absent, the runs created if absent).
 * From there the tick's Batch API cycle sends and collects it like any batch job's.
 */
/** Items advanced at once while a step is gathered (each is a few reads). */
const ITEMS_AT_ONCE = 16;

export function createPipelineBatch(deps: LifecycleDeps, advance: ReturnType<typeof createPipelineAdvance>) {
  const { jobs, items } = deps.stores;

  /** Whether every batch of a unit job is closed (collected, sent back, cancelled). */
  const runsClosed = async (unitJob: string): Promise<boolean> => {
    if (!deps.batch) return false;
    const runs = await deps.batch.runs.listForJob(unitJob);
    return runs.every((r) => !OPEN_RUN_STATES.includes(r.state));
  };

  /** Step n's units of every pending item by branch, or undefined while an item is not ready. */
  const gather = async (job: JobRecord, n: number, log: Logger): Promise<NewItem[][] | undefined> => {
    const branches = job.pipeline!.steps[n]!.branches;
    const byBranch = branches.map(() => [] as NewItem[]);
    const planner: UnitPlanning = {
      stagingStep: n,
      planUnits: async (unitJob, units) => {
        const m = branches.findIndex((_, b) => unitJobId(job.id, n, b) === unitJob.id);
        byBranch[m]!.push(...units);
      },
    };
    let afterId: string | undefined;
    for (;;) {
      const page = await items.list(job.id, { ...(afterId ? { afterId } : {}), limit: 500 });
      const pending = page.filter((item) => item.state === 'pending');
      for (let at = 0; at < pending.length; at += ITEMS_AT_ONCE) {
        const did = await Promise.all(
          pending
            .slice(at, at + ITEMS_AT_ONCE)
            .map((item) => advance.advance(job.id, item.index, planner, log)),
        );
        if (did.some((d) => d === 'waiting' || d === 'deferred')) return undefined;
      }
      if (page.length < 500) return byBranch;
      afterId = page[page.length - 1]!.id;
    }
  };

  /** Stages one unit job from its units (see above); the marker (`staged`) is written last. */
  const stageUnitJob = async (unitJob: JobRecord, units: NewItem[], quotas: Quotas, queue: UnitPlanning) => {
    const byIndex: Array<NewItem | undefined> = new Array(unitJob.total);
    for (const u of units) byIndex[u.index] = u;
    const object = `${STAGING_PREFIX}${unitJob.id}.jsonl`;
    const set = stagedSet(byIndex, partLimitsFor(unitJob.model, quotas));
    await deps.objects.writeStream(object, set.lines, { contentType: 'application/jsonl' });
    // What a batch does not take (media, a JSON schema: core/batch.ts `isBatchable`) goes on the queues.
    const inBatch = units.filter((u) => u.batchPart !== undefined);
    const onQueue = units.filter((u) => u.batchPart === undefined);
    await items.createMany(unitJob.id, inBatch);
    const extraCounters = await storeRuns(deps, unitJob, set.parts);
    await queue.planUnits(unitJob, onQueue);
    await jobs.setStaged(unitJob.id, {
      staged: { object },
      paths: { realtime: onQueue.length, batch: inBatch.length },
      extraCounters,
    });
  };

  return {
    /**
     * A live batch pipeline job's next later step, staged once every item's step before has ended
     * (see above). Called by the reconciler on every tick; cheap while a step's batches run (their
     * runs are read, not the items). Never throws: a failure is logged and the next tick tries again.
     */
    async stageSteps(
      job: JobRecord,
      queue: UnitPlanning,
      quotas: Quotas,
      log: Logger,
    ): Promise<number | undefined> {
      const spec = job.pipeline;
      if (!spec || job.mode !== 'batch' || isTerminalJob(job.status)) return undefined;
      try {
        // Step 0 is staged at submit for POST /jobs, here for a bucket file (its units unmade).
        for (let n = 0; n < spec.steps.length; n++) {
          const unitJobs = await Promise.all(
            spec.steps[n]!.branches.map((_, m) => jobs.get(unitJobId(job.id, n, m))),
          );
          if (unitJobs.every((u) => u?.staged)) continue;
          const before =
            n === 0 ? [] : spec.steps[n - 1]!.branches.map((_, m) => unitJobId(job.id, n - 1, m));
          if (!(await Promise.all(before.map(runsClosed))).every(Boolean)) return undefined;
          const units = await gather(job, n, log);
          if (!units) return undefined;
          for (const [m, unitJob] of unitJobs.entries())
            if (unitJob && !unitJob.staged) await stageUnitJob(unitJob, units[m]!, quotas, queue);
          log.info(
            { event: 'pipeline.step_staged', jobId: job.id, step: n },
            'pipeline step staged as a batch',
          );
          return n;
        }
        return undefined;
      } catch (err) {
        log.warn(
          { event: 'pipeline.stage_failed', jobId: job.id, err: (err as Error).message },
          'could not stage the next step of a batch pipeline; the next tick tries again',
        );
        return undefined;
      }
    },
  };
}
