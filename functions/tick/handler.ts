import { type ReconcileDeps, type ReconcileReport, reconcile } from '../lifecycle/reconcile.js';
import { type BatchCycleDeps, type BatchCycleReport, batchCycle } from './batch-api/cycle.js';
import { type CallbackDutyDeps, type CallbackDutyReport, deliverCallbacks } from './callbacks.js';
import { type ExportDeps, exportResults } from './export-results.js';
import { type ResumeDeps, resumeQueues } from './resume.js';

export interface TickDeps extends ReconcileDeps, ResumeDeps {
  tasks: ReconcileDeps['tasks'] & ResumeDeps['tasks'];
  planner: ReconcileDeps['planner'];
  /** The Batch API cycle (absent: the tick moves no Batch API run). */
  batchApi?: Omit<BatchCycleDeps, 'lifecycle' | 'tasks' | 'logger' | 'now'>;
  /** The bucket jobs' results files (absent: the tick writes none). */
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
 * them on a per-day 429, `resume.ts`), moves every Batch API run a step (`batch-api/cycle.ts`), reconciles
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
        if (!deps.batchApi) return;
        report.batches = await batchCycle({
          ...deps.batchApi,
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
