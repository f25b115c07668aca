import { groupTasks, type TaskCut } from '../core/task-groups.js';
import type { TaskPayload } from '../core/tasks.js';
import type { ItemTask } from './task-queue.js';

/** How a task is named from its job and its (first) item: `itemTaskName` (task-queue.ts). */
export type ItemTaskNamer = (jobId: string, task: ItemTask) => string;

/** One task to create for items: its name (dedup), payload (ids only) and when it is due. */
export interface ItemTaskSpec {
  name: string;
  payload: TaskPayload;
  scheduleMs?: number;
}

/** An item's first task: not planned again, handed over, given by the reconciler or a repair. */
const isFirstTask = (t: ItemTask) =>
  !t.replan &&
  t.round === undefined &&
  t.handover === undefined &&
  !t.repair &&
  t.retryOf === undefined &&
  t.scheduleMs === undefined;

/**
 * The tasks that carry `tasks` (in plan order): first tasks planned in the same second travel
 * together up to `cut.itemsPerTask`, and those planned for the same instant up to `cut.cap`
 * (`core/task-groups.ts`), a group named as its first item's own task and due at its first item's
 * plan; every other task carries its one item as before.
 */
export function itemTaskSpecs(
  jobId: string,
  tasks: ItemTask[],
  cut: TaskCut | undefined,
  itemTaskName: ItemTaskNamer,
): ItemTaskSpec[] {
  const single = (t: ItemTask): ItemTaskSpec => ({
    name: itemTaskName(jobId, t),
    payload: {
      kind: 'item',
      jobId,
      itemId: t.itemId,
      ...(t.plannedMs === undefined ? {} : { plannedMs: t.plannedMs }),
    },
    ...((t.scheduleMs ?? t.plannedMs) ? { scheduleMs: t.scheduleMs ?? t.plannedMs } : {}),
  });
  if (!cut || (cut.itemsPerTask <= 1 && cut.cap <= 1)) return tasks.map(single);
  const specs: ItemTaskSpec[] = tasks.filter((t) => !isFirstTask(t)).map(single);
  for (const group of groupTasks(tasks.filter(isFirstTask), cut.itemsPerTask, cut.cap)) {
    const first = group[0]!;
    if (group.length === 1) {
      specs.push(single(first));
      continue;
    }
    specs.push({
      name: itemTaskName(jobId, first),
      payload: {
        kind: 'items',
        jobId,
        items: group.map((t) => ({
          itemId: t.itemId,
          ...(t.plannedMs === undefined ? {} : { plannedMs: t.plannedMs }),
        })),
        ...(group.length > cut.itemsPerTask ? { packed: true as const } : {}),
      },
      ...(first.plannedMs ? { scheduleMs: first.plannedMs } : {}),
    });
  }
  return specs;
}
