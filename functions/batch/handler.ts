import { type ReconcileDeps, type ReconcileReport, reconcile } from '../lifecycle/reconcile.js';
import type { PausesStore } from '../platform/store/pauses.js';
import type { TaskQueue } from '../platform/task-queue.js';

export interface TickDeps extends ReconcileDeps {
  pauses: PausesStore;
  tasks: Pick<TaskQueue, 'enqueueControl' | 'resumeModel'>;
}

export interface TickReport {
  resumedModels: string[];
  reconciled: ReconcileReport;
}

/**
 * One scheduler tick: resumes model queues whose daily-quota pause has run out (the worker paused
 * them on a per-day 429), then reconciles (see `lifecycle/reconcile.ts`). The Batch API's
 * submit/poll/collect cycle joins it here. Safe when two ticks run at once.
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
  return { resumedModels, reconciled: await reconcile(deps) };
}
