import type { StepView } from '../api/pipeline.js';
import type { BatchPart } from '../core/batch.js';
import { isTerminalJob, type JobRecord, type JobSpec, type NewItem } from '../core/jobs.js';
import { unitJobId } from '../core/pipeline.js';
import { CANCELLED_ERROR } from '../core/results.js';
import { FINISH_WATCH_INTERVAL_MS } from '../core/tasks.js';
import type { Totals } from '../core/totals.js';
import type { Logger } from '../platform/logger.js';
import { storeRuns } from './batch-runs.js';
import type { LifecycleDeps } from './lifecycle.js';

/**
 * A pipeline's unit jobs (part of the lifecycle): one per (step, branch), each an ordinary job of
 * its branch's model whose items are that step's units (core/pipeline.ts). They are stored before
 * their pipeline job (a visible job is complete), live while it lives, and end when it ends:
 * finished with it (a unit never made, because its item ended at an earlier step, stays pending in
 * their counts and shows as cancelled in the view), or cancelled with it.
 */

/** A unit job to store with its pipeline job, and the units it starts with (step 0's). */
export interface UnitJobDraft {
  spec: JobSpec;
  items: NewItem[];
  /** A batch pipeline's first step: the batches its units are staged in (ingest/stage-batch.ts). */
  runs?: BatchPart[];
}

export function createPipelineJobs(deps: LifecycleDeps, clock: () => number) {
  const { jobs, items, counters, ledger } = deps.stores;

  /** The unit jobs of a pipeline job, in step then branch order. */
  const unitJobIds = (job: JobRecord): string[] =>
    job.pipeline?.steps.flatMap((step, n) => step.branches.map((_, m) => unitJobId(job.id, n, m))) ?? [];

  const totalsOf = async (unit: JobRecord): Promise<Totals> =>
    unit.final ?? (await counters.totals(unit.id, unit.total, unit.counterShards, unit.extraCounters));

  /** Ends a unit job cancelled: its pending units end, their tasks go, its slots are given back. */
  const cancelUnitJob = async (unit: JobRecord, log: Logger) => {
    const turned = unit.status === 'cancelled' ? { job: unit } : await jobs.cancel(unit.id);
    if (!turned) return;
    await ledger.releaseJob(unit.model, unit.id);
    const swept = await items.sweepPending(unit.id, { state: 'cancelled', error: CANCELLED_ERROR });
    if (swept.length > 0)
      await deps.tasks
        .deleteItems(unit.model, unit.id, swept)
        .catch((err: Error) =>
          log.warn(
            { event: 'pipeline.unit_tasks_left', jobId: unit.id, err: err.message },
            'could not delete unit tasks',
          ),
        );
    const fresh = await jobs.get(unit.id);
    if (fresh?.cancelPending)
      await jobs.completeCancel(unit.id, await items.countStates(unit.id, unit.total), fresh.version);
  };

  const pipelineJobs = {
    /** The jobs whose batches a job's view shows: its own, or a pipeline's unit jobs. */
    runJobIds: (job: JobRecord): string[] => (job.pipeline ? unitJobIds(job) : [job.id]),

    /**
     * Stores a pipeline's unit jobs (each with its first units) before the pipeline job itself.
     * Step 0's unit jobs are enqueued as ordinary jobs (`startUnitJobs`); later steps' are planned
     * unit by unit as items reach them.
     */
    async storeUnitJobs(drafts: readonly UnitJobDraft[]): Promise<void> {
      for (const draft of drafts) {
        if (draft.items.length > 0) await items.createMany(draft.spec.id, draft.items);
        const extraCounters = await storeRuns(deps, draft.spec, draft.runs ?? []);
        await jobs.create(
          { ...draft.spec, ...(extraCounters.length > 0 ? { extraCounters } : {}) },
          clock() + deps.stallMs,
        );
      }
    },

    /**
     * The unit jobs whose units are stored from the start (step 0's): their enqueuing begins. And
     * the pipeline job's finish watcher (worker/finish-watch.ts): its items end in whatever order
     * their steps allow, so the last to end is not always one of the last by index. A failure is
     * logged: the reconciler starts what did not start.
     */
    async startUnitJobs(
      jobId: string,
      drafts: readonly UnitJobDraft[],
      start: (jobId: string) => Promise<boolean>,
    ): Promise<void> {
      // A batch unit job's queue share is its units a batch does not take (media, a JSON schema).
      const queued = (d: UnitJobDraft) => d.spec.mode !== 'batch' || (d.spec.paths?.realtime ?? 0) > 0;
      await Promise.all(
        drafts.filter((d) => d.spec.unitOf?.step === 0 && queued(d)).map((d) => start(d.spec.id)),
      );
      await deps.tasks
        .enqueueControl(
          { kind: 'finish', jobId, round: 0 },
          `${jobId}-finish-0`,
          clock() + FINISH_WATCH_INTERVAL_MS,
        )
        .catch((err: Error) =>
          deps.logger.warn(
            { event: 'pipeline.finish_watch_deferred', jobId, err: err.message },
            'no finish watcher for the pipeline; the reconciler finishes it',
          ),
        );
    },

    /**
     * Brings a unit job in line with its pipeline job once that one has ended (finished or
     * cancelled); idempotent, so the pipeline's end and the reconciler may both call it. True when
     * the pipeline job has ended (the unit job is then, or will be, terminal too).
     */
    async settleUnitJob(unit: JobRecord, log: Logger = deps.logger): Promise<boolean> {
      if (!unit.unitOf) return false;
      const parent = await jobs.get(unit.unitOf.jobId);
      if (parent && !isTerminalJob(parent.status)) return false;
      // Unit jobs are stored before their pipeline job: one that is young is not an orphan yet (a
      // crash before the pipeline job was stored leaves it, and it is cancelled once it is old).
      if (!parent && clock() - unit.createdAt.getTime() < deps.stallMs) return true;
      if (!parent || parent.status === 'cancelled') {
        if (!isTerminalJob(unit.status) || unit.cancelPending) await cancelUnitJob(unit, log);
        return true;
      }
      if (isTerminalJob(unit.status)) return true;
      // A batch unit job's last part may be counted into its counter document only after its
      // items (and so the pipeline) ended: its final totals are counted from the units themselves.
      const totals =
        unit.mode === 'batch' ? await items.countStates(unit.id, unit.total) : await totalsOf(unit);
      if (await jobs.finish(unit.id, unit.version, 'succeeded', totals, unit.startedAt))
        await ledger.dropJob(unit.model, unit.id);
      return true;
    },

    /**
     * A pipeline job was just cancelled: its unit jobs turn cancelled too, at once, so no delivery
     * claims a unit while the pipeline's own items are swept; `settleUnitJobsOf` then ends their
     * units and gives their slots back (a failure here is left to it).
     */
    async turnUnitJobs(job: JobRecord, log: Logger = deps.logger): Promise<void> {
      await Promise.all(
        unitJobIds(job).map((id) =>
          jobs
            .cancel(id)
            .catch((err: Error) =>
              log.warn(
                { event: 'pipeline.unit_job_unturned', jobId: id, err: err.message },
                'could not turn a unit job cancelled; settling it will',
              ),
            ),
        ),
      );
    },

    /** A pipeline job ended: each of its unit jobs ends with it (failures left to the reconciler). */
    async settleUnitJobsOf(job: JobRecord, log: Logger = deps.logger): Promise<void> {
      await Promise.all(
        unitJobIds(job).map(async (id) => {
          const unit = await jobs.get(id);
          if (unit)
            await pipelineJobs
              .settleUnitJob(unit, log)
              .catch((err: Error) =>
                log.warn(
                  { event: 'pipeline.unit_job_unsettled', jobId: id, err: err.message },
                  'could not end a unit job; the reconciler will',
                ),
              );
        }),
      );
    },

    /**
     * The view's `steps`: each step's units (items × branches) with their counts, tokens and cost,
     * and per model. Once the pipeline job has ended, units never made count as cancelled.
     */
    async stepViews(job: JobRecord): Promise<StepView[]> {
      const spec = job.pipeline;
      if (!spec) return [];
      const ended = isTerminalJob(job.status);
      return Promise.all(
        spec.steps.map(async (step, n) => {
          const view: StepView = {
            name: step.name,
            models: [...new Set(step.branches.map((b) => b.model))],
            counts: { total: 0, succeeded: 0, failed: 0, cancelled: 0, pending: 0 },
            usage: { promptTokens: 0, outputTokens: 0 },
            costUsd: 0,
            byModel: {},
          };
          const units = await Promise.all(step.branches.map((_, m) => jobs.get(unitJobId(job.id, n, m))));
          for (const [m, unit] of units.entries()) {
            // The pipeline has ended but this unit job not yet (it is settled just after, and a
            // batch's part is counted after its answers ended the items): its units, counted.
            const exact = unit && ended && !isTerminalJob(unit.status);
            const totals = unit
              ? exact
                ? await items.countStates(unit.id, unit.total)
                : await totalsOf(unit)
              : undefined;
            addUnitTotals(view, step.branches[m]!.model, job.total, totals, ended);
          }
          return view;
        }),
      );
    },
  };
  return pipelineJobs;
}

/** Adds one unit job's totals to its step's view (and to its model's part of it). */
function addUnitTotals(
  view: StepView,
  model: string,
  items: number,
  totals: Totals | undefined,
  ended: boolean,
) {
  const c = totals?.counts;
  const succeeded = c?.succeeded ?? 0;
  const failed = c?.failed ?? 0;
  const done = succeeded + failed + (c?.cancelled ?? 0);
  const notRun = Math.max(0, items - done);
  view.counts.total += items;
  view.counts.succeeded += succeeded;
  view.counts.failed += failed;
  view.counts.cancelled += (c?.cancelled ?? 0) + (ended ? notRun : 0);
  view.counts.pending += ended ? 0 : notRun;
  const prompt = totals?.usage.promptTokens ?? 0;
  const output = totals?.usage.outputTokens ?? 0;
  const cost = totals?.costUsd ?? 0;
  view.usage.promptTokens += prompt;
  view.usage.outputTokens += output;
  view.costUsd += cost;
  const byModel = view.byModel!;
  const mine = byModel[model] ?? {
    succeeded: 0,
    failed: 0,
    usage: { promptTokens: 0, outputTokens: 0 },
    costUsd: 0,
  };
  byModel[model] = mine;
  mine.succeeded += succeeded;
  mine.failed += failed;
  mine.usage.promptTokens += prompt;
  mine.usage.outputTokens += output;
  mine.costUsd += cost;
}
