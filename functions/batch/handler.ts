import type { JobStore } from '../platform/job-store.js';
import type { Logger } from '../platform/logger.js';
import type { TaskQueue } from '../platform/task-queue.js';

export interface TickDeps {
  store: JobStore;
  tasks: TaskQueue;
  logger: Logger;
  now?: () => number;
}

export interface TickReport {
  resumedModels: string[];
}

/**
 * One scheduler tick. Today it resumes model queues whose daily-quota pause has run out (the worker
 * paused them on a per-day 429); the Batch API's submit/poll/collect cycle joins it here.
 */
export async function tick(deps: TickDeps): Promise<TickReport> {
  const now = (deps.now ?? Date.now)();
  const resumedModels: string[] = [];
  for (const pause of await deps.store.listQuotaPauses()) {
    if (pause.untilMs > now) continue;
    await deps.tasks.resumeModel(pause.model);
    await deps.store.clearQuotaPause(pause.model);
    resumedModels.push(pause.model);
    deps.logger.info({ event: 'quota.resumed', model: pause.model }, 'daily quota reset; queue resumed');
  }
  return { resumedModels };
}
