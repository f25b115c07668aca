import { z } from 'zod';
import { MAX_ITEMS_PER_TASK } from './quotas.js';

/**
 * The body of every task the worker receives, defined once: the worker parses deliveries with this
 * schema and the task queue builds payloads of its type. Ids only: a task carries at most 100 KB,
 * prompts live in Firestore.
 */
export const taskPayloadSchema = z.discriminatedUnion('kind', [
  /** Run one item. `plannedMs`: when the model's ledger planned the send (a late delivery plans again). */
  z.object({
    kind: z.literal('item'),
    jobId: z.string().min(1),
    itemId: z.string().regex(/^\d+$/),
    plannedMs: z.number().int().nonnegative().optional(),
  }),
  /**
   * Run several items of one job planned for the same second (`core/task-groups.ts`), each claimed,
   * leased and recorded on its own; each keeps its own planned time.
   */
  z.object({
    kind: z.literal('items'),
    jobId: z.string().min(1),
    items: z
      .array(
        z.object({
          itemId: z.string().regex(/^\d+$/),
          plannedMs: z.number().int().nonnegative().optional(),
        }),
      )
      .min(1)
      .max(MAX_ITEMS_PER_TASK),
    /** More items than the queue's k (a ramping queue's task): see {@link TaskDelivery.packed}. */
    packed: z.literal(true).optional(),
  }),
  /**
   * Create the item tasks of a job from item `from` on, a page at a time; up to item `to` (excluded)
   * when given: the items of a batch sent back to the queues.
   */
  z.object({
    kind: z.literal('enqueue'),
    jobId: z.string().min(1),
    from: z.number().int().nonnegative(),
    to: z.number().int().positive().optional(),
  }),
  /** Watch a running job until every item is terminal, then finish it (round n, for the name). */
  z.object({ kind: z.literal('finish'), jobId: z.string().min(1), round: z.number().int().nonnegative() }),
]);

export type TaskPayload = z.infer<typeof taskPayloadSchema>;

/** A Cloud Tasks delivery, parsed from its `X-CloudTasks-*` headers and JSON body by the adapter. */
export interface TaskDelivery {
  queueName: string;
  taskName: string;
  /** Attempts before this one (`X-CloudTasks-TaskRetryCount`). */
  retryCount: number;
  executionCount: number;
  payload: TaskPayload;
  /**
   * One item of a multi-item task (`worker/run-items.ts`): the task checks once whether the job is
   * done for all its items found finished, not once per item.
   */
  inGroup?: boolean;
  /**
   * One item of a task carrying more items than its queue's k (a ramping queue's, `core/ramp.ts`):
   * the queue's rate does not bound its sends, so a late one goes ahead only where the ledger's
   * requests are light too.
   */
  packed?: boolean;
}

/**
 * Whether this delivery is the queue's last: after a non-2xx answer to it, Cloud Tasks deletes the
 * task (there is no dead-letter queue), so the worker must record an outcome or hand the item over.
 */
export function isLastAttempt(retryCount: number, maxAttempts: number): boolean {
  return maxAttempts > 0 && retryCount + 1 >= maxAttempts;
}

/** How often the finish watcher looks at a running job's counters at first. */
export const FINISH_WATCH_INTERVAL_MS = 2000;

/** After this many rounds the watcher stops: the reconciler's sweep finishes what is left. */
export const FINISH_WATCH_MAX_ROUNDS = 120;

/**
 * The delay before finish-watch round `round + 1`, or undefined when the watcher stops. Every 2 s
 * for the first minute, then doubling up to a minute: a job that runs for hours costs a handful of
 * control tasks, not one every 2 s without end.
 */
export function finishWatchDelayMs(round: number): number | undefined {
  if (round + 1 >= FINISH_WATCH_MAX_ROUNDS) return undefined;
  const steady = 30;
  if (round < steady) return FINISH_WATCH_INTERVAL_MS;
  return Math.min(60_000, FINISH_WATCH_INTERVAL_MS * 2 ** (round - steady + 1));
}
