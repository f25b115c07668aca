import type { TaskDelivery } from '../core/tasks.js';
import type { WorkerDeps, WorkerReply } from './handler.js';
import { runItem } from './run-item.js';

/**
 * Runs a task of several items (`core/task-groups.ts`): each item goes through `runItem` exactly as
 * if it had a task of its own (claimed, leased, renewed, recorded and counted on its own, its plan
 * checked and planned again when late), all side by side, so the task takes as long as its slowest
 * item and the dispatch deadline of one item covers it.
 *
 * The task's status is the one that asks most of Cloud Tasks (`combineReplies`): 2xx only when every
 * item is settled for this task. An item a transient fault stopped gets a retry of its own, planned
 * on the ledger (`call-failed.ts`), and an item another delivery holds is left to it
 * (`unclaimed.ts`): neither asks the queue to deliver the whole task again. What still does (a store
 * error, media to fetch again, a ledger too busy to plan) answers 500, and the retry runs again: the
 * finished items are found done by their claims (never called twice) and only the unfinished run.
 * Every delivery of the task sees the same `X-CloudTasks-TaskRetryCount`, so on the last attempt
 * each unfinished item records its error, or is handed to a task of its own, as a single item's
 * would.
 */
export async function runItems(delivery: TaskDelivery, deps: WorkerDeps): Promise<WorkerReply> {
  const payload = delivery.payload;
  if (payload.kind !== 'items') throw new Error('runItems takes multi-item tasks');
  const replies = await Promise.all(
    payload.items.map((entry) =>
      runItem(
        {
          ...delivery,
          inGroup: true,
          ...(payload.packed ? { packed: true } : {}),
          payload: {
            kind: 'item',
            jobId: payload.jobId,
            itemId: entry.itemId,
            ...(entry.plannedMs === undefined ? {} : { plannedMs: entry.plannedMs }),
          },
        },
        deps,
      ).catch((err: Error): WorkerReply => {
        // runItem has logged it and given the lease back: the task's retry runs the item again.
        return { status: 500, body: { outcome: 'error', detail: err.message } };
      }),
    ),
  );
  // Items found finished or cancelled: their writer may have died before finishing the job.
  if (replies.some((r) => r.body.outcome === 'duplicate' || r.body.outcome === 'cancelled'))
    await deps.lifecycle.finishIfDone(payload.jobId, deps.logger);
  return combineReplies(replies);
}

/**
 * One answer for a task's items. 2xx when every item's answer was 2xx. Otherwise the answer that
 * asks most of the queue: 503 (a model's daily quota is spent: its queue is paused) over 429 over
 * 500 (a store error, a ledger too busy to plan a retry), with the longest `Retry-After` among them, so no
 * item is retried sooner than it asked.
 */
export function combineReplies(replies: WorkerReply[]): WorkerReply {
  const outcomes = new Map<string, number>();
  for (const r of replies) outcomes.set(r.body.outcome, (outcomes.get(r.body.outcome) ?? 0) + 1);
  const detail = [...outcomes].map(([outcome, n]) => `${outcome}×${n}`).join(', ');
  const failing = replies.filter((r) => r.status < 200 || r.status >= 300);
  if (failing.length === 0) return { status: 200, body: { outcome: 'items', detail } };
  const rank = (status: number) => (status === 503 ? 3 : status === 429 ? 2 : 1);
  const worst = failing.reduce((a, b) => (rank(b.status) > rank(a.status) ? b : a));
  const waits = failing
    .filter((r) => r.status === worst.status && r.retryAfterSeconds !== undefined)
    .map((r) => r.retryAfterSeconds!);
  return {
    status: worst.status,
    ...(waits.length > 0 ? { retryAfterSeconds: Math.max(...waits) } : {}),
    body: { outcome: 'items-retry', detail },
  };
}
