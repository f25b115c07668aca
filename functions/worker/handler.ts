import type { Quotas } from '../core/quotas.js';
import type { TaskDelivery } from '../core/tasks.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { Planner } from '../lifecycle/plan.js';
import type { GeminiClient } from '../platform/gemini/client.js';
import type { Logger } from '../platform/logger.js';
import type { MediaFetcher } from '../platform/media/index.js';
import type { TaskQueue } from '../platform/task-queue.js';
import { enqueuePage } from './enqueue-page.js';
import { watchFinish } from './finish-watch.js';
import type { ResponseCache } from './response-cache.js';
import { runItem } from './run-item.js';
import { runItems } from './run-items.js';

export type { TaskDelivery };

/** What the adapter answers Cloud Tasks: 2xx ends the task, anything else asks for another attempt. */
export interface WorkerReply {
  status: number;
  retryAfterSeconds?: number;
  body: { outcome: string; detail?: string };
}

export interface WorkerDeps {
  lifecycle: Lifecycle;
  planner: Planner;
  gemini: GeminiClient;
  tasks: TaskQueue;
  media: MediaFetcher;
  quotas: Quotas;
  logger: Logger;
  /** How long a delivery owns an item; a crashed delivery's item is free again after it. */
  leaseMs: number;
  geminiTimeoutMs: number;
  /** How long a Flex call is waited for (Flex answers within minutes); the standard timeout if absent. */
  geminiFlexTimeoutMs?: number;
  /** Enqueue pages run until this budget is spent, then continue in a fresh control task. */
  enqueueBudgetMs: number;
  now?: () => number;
  /** The worker's own waits (the bound on a replanning, `keep-lease.ts`); tests pass their own. */
  sleep?: (ms: number) => Promise<void>;
  /** Answers identical requests of the same owner without calling Gemini; absent: no cache. */
  responseCache?: ResponseCache;
}

/**
 * Handles one task. Four kinds, one file each: an item to run (`run-item.ts`), several items of one
 * second (`run-items.ts`), a page of a job's enqueuing (`enqueue-page.ts`), a look at whether a job
 * is done (`finish-watch.ts`).
 */
export async function handleTask(delivery: TaskDelivery, deps: WorkerDeps): Promise<WorkerReply> {
  switch (delivery.payload.kind) {
    case 'item':
      return runItem(delivery, deps);
    case 'items':
      return runItems(delivery, deps);
    case 'enqueue':
      return enqueuePage(delivery, deps);
    case 'finish':
      return watchFinish(delivery, deps);
  }
}
