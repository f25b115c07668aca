import { type ItemRecord, isTerminalJob, type JobRecord, type ReconcileCounts } from '../core/jobs.js';
import type { Quotas } from '../core/quotas.js';
import type { Logger } from '../platform/logger.js';
import type { Stores } from '../platform/store/index.js';
import type { ReconcileCursor } from '../platform/store/jobs.js';
import type { TaskQueue } from '../platform/task-queue.js';
import type { Lifecycle } from './lifecycle.js';
import type { Planner } from './plan.js';

/**
 * The reconciler: a sweeper, not hope, closes what crashed. Run on every scheduler tick, bounded
 * per run, idempotent (two ticks at once do no harm: every write is guarded by a precondition or a
 * task name):
 * - pending items no task will deliver get a new task: their lease ran out with no outcome (their
 *   delivery died), or they have no lease and are past their due time (`ItemRecord.dueByMs`: their
 *   task was deleted after its last attempt, say while Cloud Run refused deliveries). After
 *   {@link MAX_ROUNDS} such rounds they fail with the reason;
 * - jobs whose enqueuing stalled (the first task never created, a control task out of attempts)
 *   are enqueued again from where they stopped;
 * - cancels that stopped halfway are finished;
 * - live jobs with nothing pending are finished (finish watchers are bounded and may have stopped).
 * Both sweeps go on from a cursor kept between runs, so every job and item gets its turn however
 * many there are. One item or job failing never stops the rest of the run. Every action is logged
 * with a stable event name and counted in the job's view (`reconciled`).
 */
export interface ReconcileDeps {
  /** `pauses`: items of a paused model wait for its queue, not for a new task. */
  stores: Pick<Stores, 'jobs' | 'items'> & Partial<Pick<Stores, 'pauses'>>;
  lifecycle: Lifecycle;
  planner: Planner;
  tasks: Pick<TaskQueue, 'enqueueControl'>;
  logger: Logger;
  /** How long enqueuing or a cancel may stand still before the reconciler acts. */
  stallMs: number;
  now?: () => number;
  /** Bounds of one run: items read per sweep, jobs read. */
  limits?: { items?: number; jobs?: number };
  /**
   * The sweep of pending items with no lease past their due time (default on). Off, only expired
   * leases are found: the simulation switches it off to show it finds the items that then hang.
   */
  orphanSweep?: boolean;
  /** The quotas (batch part limits): absent, a batch pipeline's later steps are not staged here. */
  quotas?: Quotas;
}

export interface ReconcileReport {
  retasked: number;
  failed: number;
  orphans: number;
  reenqueued: number;
  cancelsResumed: number;
  finished: number;
  /**
   * What the run could not do: items and jobs (logged as `reconcile.item_error`, `reconcile.job_error`)
   * and reads or writes it went on without (`reconcile.<what>_failed`). The next run tries again.
   */
  errors: number;
  /** Items given up on whose answer a delivery had paid for and parked: recorded, not failed. */
  recovered: number;
}

/** New tasks an item may get from the reconciler before it is failed. */
export const MAX_ROUNDS = 3;

type Item = ItemRecord & { jobId: string };

interface Run {
  deps: ReconcileDeps;
  clock: () => number;
  report: ReconcileReport;
  jobOf: (id: string) => Promise<JobRecord | undefined>;
  /** Models whose queue is paused; undefined when unknown (the orphan sweep then waits a tick). */
  paused: Set<string> | undefined;
}

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

/**
 * Runs a read or write the run can do without; a failure is logged (`reconcile.<what>_failed`),
 * counted in `errors`, and the run goes on with `fallback`.
 */
async function attempt<T>(run: Run, what: string, fn: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    run.report.errors++;
    run.deps.logger.error(
      { event: `reconcile.${what}_failed`, err: (err as Error).message },
      `could not ${what}`,
    );
    return fallback;
  }
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

/** Expired leases, and (from the cursor on) pending items past their due time: each given its way forward. */
async function sweepItems(run: Run, cursor: ReconcileCursor, next: ReconcileCursor): Promise<void> {
  const { deps, clock } = run;
  const limit = deps.limits?.items ?? 200;
  const expired = await attempt(
    run,
    'list_expired',
    () => deps.stores.items.listExpiredLeases(clock(), limit),
    [],
  );
  let overdue: Item[] = [];
  if (deps.orphanSweep !== false && run.paused) {
    const page = await attempt(
      run,
      'list_overdue',
      () => deps.stores.items.listOverdue(clock(), limit, cursor.overdueAfter),
      undefined,
    );
    if (page) {
      overdue = page.items;
      // Past the last page, the next run starts again from the earliest due.
      next.overdueAfter = page.next;
    }
  }
  const seen = new Set<string>();
  for (const item of [...expired, ...overdue]) {
    const key = `${item.jobId}/${item.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      await reviveItem(run, item);
    } catch (err) {
      run.report.errors++;
      deps.logger.error(
        { event: 'reconcile.item_error', jobId: item.jobId, itemId: item.id, err: (err as Error).message },
        'could not give the item a way forward; the next run tries again',
      );
    }
  }
}

/**
 * Gives one item a new task, or fails it after {@link MAX_ROUNDS}. The task first, then the item
 * write (precondition: the item as read): a crash between leaves a duplicate task, harmless, and
 * the item as it was, so the next run finds it again; never an item with no task and no lease.
 */
async function reviveItem(run: Run, item: Item): Promise<void> {
  const { deps, clock } = run;
  const job = await run.jobOf(item.jobId);
  // A cancelled job's items are the cancel's to end (below); an unknown job has nothing to run.
  if (!job || isTerminalJob(job.status)) return;
  // A live lease is its holder's; when it runs out, the expired-lease sweep finds the item.
  if (item.lease && item.lease.untilMs > clock()) return;
  const orphan = !item.lease;
  // A paused queue holds its tasks back: they come when it resumes.
  if (orphan && (!run.paused || run.paused.has(job.model))) return;
  const log = deps.logger.child({ jobId: job.id, itemId: item.id });
  const ref = { jobId: job.id, itemId: item.id, version: item.version, shards: job.counterShards };
  if (item.rounds >= MAX_ROUNDS) {
    const message = orphan
      ? `No delivery finished the item: no task delivered it in time, ${item.rounds + 1} times (${item.attempts} attempts).`
      : `No delivery finished the item: its lease ran out ${item.rounds + 1} times (${item.attempts} attempts).`;
    const ended = await deps.lifecycle.giveUp(ref, item, { code: 500, status: 'ABORTED', message });
    if (ended === 'failed') {
      await count(run, job.id, 'failed');
      log.warn({ event: 'reconcile.item_failed', rounds: item.rounds, orphan }, message);
    } else if (ended === 'recovered') {
      run.report.recovered++;
      log.warn(
        { event: 'reconcile.item_recovered', rounds: item.rounds },
        'no delivery finished the item, but one had paid for its answer and parked it: recorded',
      );
    }
    return;
  }
  const round = item.rounds + 1;
  const slotMs = await deps.planner.retask(job, item, round);
  if (slotMs === undefined) {
    log.warn(
      { event: 'reconcile.item_unplanned', round },
      'no slot for the item (job over or model unknown)',
    );
    return;
  }
  if (!(await deps.stores.items.retask(ref, { dueByMs: deps.planner.dueBy(slotMs) }))) return;
  await count(run, job.id, orphan ? 'orphans' : 'retasked');
  if (orphan) {
    log.warn(
      { event: 'reconcile.item_orphaned', round, slotMs },
      'no task delivered the item in time; new task',
    );
  } else {
    log.warn({ event: 'reconcile.item_retasked', round, slotMs }, 'lease ran out with no outcome; new task');
  }
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

/** Counts an action in the run's report and in the job's view. */
async function count(run: Run, jobId: string, what: 'retasked' | 'failed' | 'orphans'): Promise<void> {
  run.report[what]++;
  await run.deps.stores.jobs.countReconcile(jobId, what);
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
