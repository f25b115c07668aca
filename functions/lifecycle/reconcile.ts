import { isTerminalJob, type JobRecord, type ReconcileCounts } from '../core/jobs.js';
import type { Logger } from '../platform/logger.js';
import type { ReconcileCursor } from '../platform/store/jobs.js';
import { sweepItems } from './reconcile-items.js';
import { attempt, type ReconcileDeps, type ReconcileReport, type Run } from './reconcile-run.js';

export type { ReconcileDeps, ReconcileReport } from './reconcile-run.js';

/**
 * The reconciler: a sweeper, not hope, closes what crashed. Run on every scheduler tick, bounded
 * per run, idempotent (two ticks at once do no harm: every write is guarded by a precondition or a
 * task name):
 * - pending items no task will deliver get a new task: their lease ran out with no outcome (their
 *   delivery died), or they have no lease and are past their due time (`ItemRecord.dueByMs`: their
 *   task was deleted after its last attempt, say while Cloud Run refused deliveries). After
 *   MAX_ROUNDS (./reconcile-items.ts) such rounds they fail with the reason;
 * - jobs whose enqueuing stalled (the first task never created, a control task out of attempts)
 *   are enqueued again from where they stopped;
 * - cancels that stopped halfway are finished;
 * - live jobs with nothing pending are finished (finish watchers are bounded and may have stopped).
 * Both sweeps go on from a cursor kept between runs, so every job and item gets its turn however
 * many there are. One item or job failing never stops the rest of the run. Every action is logged
 * with a stable event name and counted in the job's view (`reconciled`).
 */
export async function reconcile(deps: ReconcileDeps): Promise<ReconcileReport> {
  const { jobs } = deps.stores;
  const report: ReconcileReport = {
    retasked: 0,
    failed: 0,
    orphans: 0,
    reenqueued: 0,
    cancelsResumed: 0,
    finished: 0,
    errors: 0,
    recovered: 0,
  };
  const jobCache = new Map<string, Promise<JobRecord | undefined>>();
  const jobOf = (id: string) => {
    if (!jobCache.has(id)) jobCache.set(id, jobs.get(id));
    return jobCache.get(id)!;
  };
  const run: Run = { deps, clock: deps.now ?? Date.now, report, jobOf, paused: undefined };
  run.paused = await pausedModels(run);
  const cursor = await attempt(run, 'read_cursor', () => jobs.readReconcileCursor(), {});
  const next: ReconcileCursor = { ...cursor };
  await sweepItems(run, cursor, next);
  await sweepJobs(run, cursor, next);
  await attempt(run, 'write_cursor', () => jobs.writeReconcileCursor(next), undefined);
  return report;
}

async function pausedModels(run: Run): Promise<Set<string> | undefined> {
  const { pauses } = run.deps.stores;
  if (!pauses) return new Set();
  return attempt(
    run,
    'list_pauses',
    async () => new Set((await pauses.list()).map((p) => p.model)),
    undefined,
  );
}

/**
 * A live pipeline job, once every `stallMs` (its `enqueueDueMs`, taken with a precondition: of two
 * ticks at once, one sweeps): each pending item is moved on where a crash left it between one
 * step's end and the next step's units (lifecycle/pipeline-advance.ts). False when another tick has it.
 */
async function healPipeline(run: Run, job: JobRecord, log: Logger): Promise<boolean> {
  const { deps, clock } = run;
  if (!(await deps.stores.jobs.setEnqueued(job.id, job.total, clock() + deps.stallMs, job.version)))
    return false;
  const seen = await deps.lifecycle.pipeline.heal(job, deps.planner, log);
  log.debug({ event: 'reconcile.pipeline_swept', pending: seen }, 'pipeline items looked at');
  return true;
}

/** One page of unsettled jobs from the cursor on; past the last page the next run starts again. */
async function sweepJobs(run: Run, cursor: ReconcileCursor, next: ReconcileCursor): Promise<void> {
  const { deps } = run;
  const limit = deps.limits?.jobs ?? 100;
  const page = await attempt(
    run,
    'list_jobs',
    () => deps.stores.jobs.listUnsettled(limit, cursor.jobsAfter),
    undefined,
  );
  if (!page) return;
  next.jobsAfter = page.length === limit ? page[page.length - 1]!.id : undefined;
  for (const job of page) {
    try {
      await reconcileJob(run, job);
    } catch (err) {
      run.report.errors++;
      deps.logger.error(
        { event: 'reconcile.job_error', jobId: job.id, err: (err as Error).message },
        'could not reconcile the job; the next run tries again',
      );
    }
  }
}

async function reconcileJob(run: Run, job: JobRecord): Promise<void> {
  const { deps, clock, report } = run;
  const { jobs } = deps.stores;
  const log = deps.logger.child({ jobId: job.id });
  const counted = async (what: keyof ReconcileCounts) => jobs.countReconcile(job.id, what);
  // A pipeline's unit job ends with its pipeline job (lifecycle/pipeline-jobs.ts).
  if (job.unitOf && (await deps.lifecycle.pipeline.settleUnitJob(job, log))) return;
  if (job.status === 'cancelled') {
    if (!job.cancelPending || clock() - (job.finishedAt?.getTime() ?? 0) < deps.stallMs) return;
    // Two ticks at once: only the one that froze the totals counts it.
    if (!(await deps.lifecycle.finishCancel(job, log))) return;
    report.cancelsResumed++;
    await counted('cancelsResumed');
    log.warn({ event: 'reconcile.cancel_resumed' }, 'a cancel stopped halfway; finished it');
    return;
  }
  // A batch pipeline's next step is staged once its step before has ended (every tick).
  if (deps.quotas) await deps.lifecycle.pipeline.stageSteps(job, deps.planner, deps.quotas, log);
  // Live jobs are left alone until their enqueuing has stood still for `stallMs`.
  if (isTerminalJob(job.status) || clock() < job.enqueueDueMs) return;
  if (job.enqueuedThrough < job.total) {
    const through = job.enqueuedThrough;
    // Take the stall first (a precondition: of two ticks at once, one wins), then start enqueuing;
    // if that fails, the next stall tries again.
    if (!(await jobs.setEnqueued(job.id, through, clock() + deps.stallMs, job.version))) return;
    await deps.tasks.enqueueControl(
      { kind: 'enqueue', jobId: job.id, from: through },
      `${job.id}-enqueue-${through}-r${Math.floor(job.enqueueDueMs / 1000)}`,
    );
    report.reenqueued++;
    await counted('reenqueued');
    log.warn({ event: 'reconcile.enqueue_restarted', through }, 'enqueuing stalled; started it again');
    return;
  }
  if (job.pipeline && !(await healPipeline(run, job, log))) return;
  if ((await deps.lifecycle.finishIfDone(job.id, log)) === 'finished') {
    if (job.pipeline) await deps.lifecycle.pipeline.settleUnitJobsOf(job, log);
    report.finished++;
    await counted('finishes');
    log.info({ event: 'reconcile.job_finished' }, 'nothing pending; the sweep finished the job');
  }
}
