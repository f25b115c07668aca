import { type ReconcileDeps, type ReconcileReport, reconcile } from '../lifecycle/reconcile.js';
import type { PausesStore } from '../platform/store/pauses.js';
import type { TaskQueue } from '../platform/task-queue.js';
import { type BatchCycleDeps, type BatchCycleReport, batchCycle } from './batch-api/cycle.js';
import { type CallbackDutyDeps, type CallbackDutyReport, deliverCallbacks } from './callbacks.js';
import { type ExportDeps, exportResults } from './export-results.js';

export interface TickDeps extends ReconcileDeps {
  pauses: PausesStore;
  tasks: Pick<TaskQueue, 'enqueueControl' | 'resumeModel'>;
  /** The Batch API cycle and the bucket jobs' results files (absent: the tick does neither). */
  batch?: Omit<BatchCycleDeps, 'lifecycle' | 'tasks' | 'logger' | 'now'>;
  exports?: Omit<ExportDeps, 'lifecycle' | 'logger'>;
  /** The callback outbox (absent: the tick delivers no callbacks). */
  callbacks?: Omit<CallbackDutyDeps, 'lifecycle' | 'logger' | 'now'>;
}

/** The duties of one tick, each run on its own. */
export type TickDuty = 'resume' | 'batch' | 'reconcile' | 'exports' | 'callbacks';

export interface TickReport {
  resumedModels: string[];
  batches: BatchCycleReport | null;
  /** Null when the reconciler did not run to its end (see `failed`). */
  reconciled: ReconcileReport | null;
  exported: number;
  callbacks: CallbackDutyReport | null;
  /** Duties that threw (each logged as `tick.duty_failed`); the others ran all the same. */
  failed: TickDuty[];
}

/**
 * One scheduler tick: resumes model queues whose daily-quota pause has run out (the worker paused
 * them on a per-day 429), moves every Batch API run a step (`runs.ts`), reconciles
 * (`lifecycle/reconcile.ts`), writes the results files of bucket jobs that ended, and delivers the
 * callbacks that are due (the outbox, `callbacks.ts`). Each duty
 * runs on its own: one that throws is logged and reported, and never stops the others (a queue that
 * will not resume must not stop the reconciler). Safe when two ticks run at once.
 */
export async function tick(deps: TickDeps): Promise<TickReport> {
  const report: TickReport = {
    resumedModels: [],
    batches: null,
    reconciled: null,
    exported: 0,
    callbacks: null,
    failed: [],
  };
  const common = { lifecycle: deps.lifecycle, logger: deps.logger };
  const duties: Array<[TickDuty, () => Promise<void>]> = [
    ['resume', () => resumeQueues(deps, report.resumedModels)],
    [
      'batch',
      async () => {
        if (!deps.batch) return;
        report.batches = await batchCycle({
          ...deps.batch,
          ...common,
          tasks: deps.tasks,
          ...(deps.now ? { now: deps.now } : {}),
        });
      },
    ],
    [
      'reconcile',
      async () => {
        report.reconciled = await reconcile(deps);
      },
    ],
    [
      'exports',
      async () => {
        if (deps.exports) report.exported = await exportResults({ ...deps.exports, ...common });
      },
    ],
    [
      'callbacks',
      async () => {
        if (!deps.callbacks) return;
        report.callbacks = await deliverCallbacks({
          ...deps.callbacks,
          ...common,
          ...(deps.now ? { now: deps.now } : {}),
        });
      },
    ],
  ];
  for (const [duty, run] of duties) {
    try {
      await run();
    } catch (err) {
      report.failed.push(duty);
      deps.logger.error(
        { event: 'tick.duty_failed', duty, err: (err as Error).message },
        `the tick's ${duty} duty failed; the other duties ran, the next tick tries again`,
      );
    }
  }
  return report;
}

/**
 * Resumes every model queue whose pause has run out. The record stays, marked resumed, for one due
 * window after (`planner.dueBy`): the tasks the queue held back are all past their items' due time,
 * and the reconciler must not take them for lost while the queue delivers them (it leaves a model
 * with a record alone). A failed resume is tried again next tick, and one model failing does not
 * keep the others paused; the first failure is thrown once all were tried.
 */
async function resumeQueues(deps: TickDeps, resumed: string[]): Promise<void> {
  const now = (deps.now ?? Date.now)();
  let failure: unknown;
  for (const pause of await deps.pauses.list()) {
    if (pause.untilMs > now) continue;
    try {
      if (pause.resumedAtMs === undefined) {
        await deps.tasks.resumeModel(pause.model);
        // A new pause written meanwhile is left as it is: its own time comes.
        if (!(await deps.pauses.markResumed(pause.model, pause.untilMs, now))) continue;
        resumed.push(pause.model);
        deps.logger.info({ event: 'quota.resumed', model: pause.model }, 'daily quota reset; queue resumed');
      } else if (now >= deps.planner.dueBy(pause.resumedAtMs)) {
        await deps.pauses.clear(pause.model, pause.untilMs);
      }
    } catch (err) {
      failure ??= err;
      deps.logger.error(
        { event: 'quota.resume_failed', model: pause.model, err: (err as Error).message },
        'could not resume the queue; the next tick tries again',
      );
    }
  }
  if (failure) throw failure;
}
