import type { Planner } from '../lifecycle/plan.js';
import type { Logger } from '../platform/logger.js';
import type { PausesStore } from '../platform/store/pauses.js';
import type { TaskQueue } from '../platform/task-queue.js';

/** What the tick's resume duty needs. */
export interface ResumeDeps {
  pauses: PausesStore;
  tasks: Pick<TaskQueue, 'resumeModel'>;
  planner: Pick<Planner, 'dueBy'>;
  logger: Logger;
  now?: () => number;
}

/**
 * Resumes every model queue whose pause has run out. The record stays, marked resumed, for one due
 * window after (`planner.dueBy`): the tasks the queue held back are all past their items' due time,
 * and the reconciler must not take them for lost while the queue delivers them (it leaves a model
 * with a record alone). A failed resume is tried again next tick, and one model failing does not
 * keep the others paused; the first failure is thrown once all were tried.
 */
export async function resumeQueues(deps: ResumeDeps, resumed: string[]): Promise<void> {
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
