import { type ReconcileDeps, type ReconcileReport, reconcile } from '../lifecycle/reconcile.js';
import type { PausesStore } from '../platform/store/pauses.js';
import type { TaskQueue } from '../platform/task-queue.js';
import { type ExportDeps, exportResults } from './export-results.js';
import { type BatchCycleDeps, type BatchCycleReport, batchCycle } from './runs.js';

export interface TickDeps extends ReconcileDeps {
  pauses: PausesStore;
  tasks: Pick<TaskQueue, 'enqueueControl' | 'resumeModel'>;
  /** The Batch API cycle and the bucket jobs' results files (absent: the tick does neither). */
  batch?: Omit<BatchCycleDeps, 'lifecycle' | 'tasks' | 'logger' | 'now'>;
  exports?: Omit<ExportDeps, 'lifecycle' | 'logger'>;
}

export interface TickReport {
  resumedModels: string[];
  batches: BatchCycleReport | null;
  reconciled: ReconcileReport;
  exported: number;
}

/**
 * One scheduler tick: resumes model queues whose daily-quota pause has run out (the worker paused
 * them on a per-day 429), moves every Batch API run a step (`runs.ts`), reconciles
 * (`lifecycle/reconcile.ts`), and writes the results files of bucket jobs that ended. Safe when two
 * ticks run at once.
 */
export async function tick(deps: TickDeps): Promise<TickReport> {
  const now = (deps.now ?? Date.now)();
  const resumedModels: string[] = [];
  for (const pause of await deps.pauses.list()) {
    if (pause.untilMs > now) continue;
    await deps.tasks.resumeModel(pause.model);
    await deps.pauses.clear(pause.model);
    resumedModels.push(pause.model);
    deps.logger.info({ event: 'quota.resumed', model: pause.model }, 'daily quota reset; queue resumed');
  }
  const common = { lifecycle: deps.lifecycle, logger: deps.logger };
  const batches = deps.batch
    ? await batchCycle({
        ...deps.batch,
        ...common,
        tasks: deps.tasks,
        ...(deps.now ? { now: deps.now } : {}),
      })
    : null;
  const reconciled = await reconcile(deps);
  const exported = deps.exports ? await exportResults({ ...deps.exports, ...common }) : 0;
  return { resumedModels, batches, reconciled, exported };
}
