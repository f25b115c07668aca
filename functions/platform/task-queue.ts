import { createHash } from 'node:crypto';
import { CloudTasksClient } from '@google-cloud/tasks';
import { credentials } from '@grpc/grpc-js';
import { sleep } from '../api/sleep.js';
import { CONTROL_QUEUE_MAX_CONCURRENT, queueConcurrency } from '../core/queue-concurrency.js';
import { queueRateLimits } from '../core/queue-rate.js';
import { CONTROL_QUEUE_ID, type Quotas, queueIdForModel } from '../core/quotas.js';
import { retry } from '../core/retry.js';
import type { TaskCut } from '../core/task-groups.js';
import type { TaskPayload } from '../core/tasks.js';
import { itemTaskSpecs } from './item-tasks.js';

export type { TaskPayload };

export interface ItemTask {
  itemId: string;
  index: number;
  /** Planned send time (epoch ms) from the model's ledger: the task's schedule time, and in its payload. */
  plannedMs?: number;
  /** The item was planned again: its task needs a new name, as the first one is spent. */
  replan?: boolean;
  /** The reconciler's n-th new task for the item (its lease ran out with no outcome). */
  round?: number;
  /** A new task for the item (a last attempt, a Gemini 429), named by the second it is due. */
  handover?: number;
  /** The item's repair call (its answer missed its schema): once per item, so named for it. */
  repair?: boolean;
  /**
   * The item's retry after a transient fault in a task of several items, planned on the ledger;
   * named by the item's attempt count, which every claim raises, so each retry is created once.
   */
  retryOf?: number;
  /** When the task is due, if not at `plannedMs` (a handover keeps its plan and comes later). */
  scheduleMs?: number;
}

/** Narrow interface over Cloud Tasks. */
export interface TaskQueue {
  /**
   * Creates one named task per item on the model's queue, scheduled at its planned time; a task that
   * already exists is fine. With a `cut` (`taskCutOf`), first tasks planned in the same second, or
   * for the same instant, share a task (`item-tasks.ts`).
   */
  enqueueItems(model: string, jobId: string, tasks: ItemTask[], cut?: TaskCut): Promise<void>;
  /**
   * Creates an item's task on the queue a delivery came from (its `X-CloudTasks-QueueName`): how a
   * last attempt that could not even read its item hands it on.
   */
  handOver(queueName: string, jobId: string, task: ItemTask): Promise<void>;
  /** Creates a control task (enqueuing, finishing); `name` dedupes it; `scheduleMs` delays it. */
  enqueueControl(payload: TaskPayload, name: string, scheduleMs?: number): Promise<void>;
  /**
   * Deletes the (first) tasks of a cancelled job's items, so a queue that dispatches at the model's
   * rate does not spend it on deliveries that would only end as cancelled. A task already gone is
   * fine; replanned tasks (other names) just end as cancelled when they come.
   */
  deleteItems(model: string, jobId: string, itemIds: string[]): Promise<number>;
  pauseModel(model: string): Promise<void>;
  resumeModel(model: string): Promise<void>;
  /**
   * Creates or updates every model queue and the control queue from the quotas (local cloud, tests);
   * with `workerSlots` (the worker's max instances × concurrency), their concurrent dispatches share
   * those slots (`core/queue-concurrency.ts`), else each model's queue allows Cloud Tasks' 5,000.
   */
  ensureQueues(quotas: Quotas, options?: { workerSlots?: number }): Promise<void>;
}

export interface TaskQueueOptions {
  projectId: string;
  region: string;
  workerUrl: string;
  /** Identity in the tasks' OIDC token; absent only on the local cloud. */
  serviceAccount?: string;
  /** `HOST:PORT` of the Cloud Tasks emulator. */
  emulatorHost?: string;
  /** Parallel CreateTask calls. */
  concurrency?: number;
  /** How long Cloud Tasks waits for the worker's answer to an item task (15–1800 s). */
  dispatchDeadlineSeconds?: number;
}

/**
 * Constructor options that point the official client at an emulator on `HOST:PORT` (or `[v6]:PORT`)
 * over plain gRPC; insecure channel credentials also keep the client from fetching Google credentials.
 */
export function emulatorClientOptions(host: string): ConstructorParameters<typeof CloudTasksClient>[0] {
  const match = /^\[?([^\]/]+?)\]?:(\d+)$/.exec(host.trim());
  if (!match?.[1] || !match[2]) throw new Error(`CLOUD_TASKS_EMULATOR_HOST must be HOST:PORT, got "${host}"`);
  return { apiEndpoint: match[1], port: Number(match[2]), sslCreds: credentials.createInsecure() };
}

/**
 * Task names are derived from job and item, so a retried enqueue never doubles a task (Cloud Tasks
 * refuses a reused name for about an hour). A short hash leads the name because sequential names
 * make Cloud Tasks slower to accept them.
 */
export function itemTaskId(jobId: string, itemId: string): string {
  const h = createHash('sha256').update(`${jobId}/${itemId}`).digest('hex').slice(0, 8);
  return `${h}-${jobId}-${itemId}`;
}

/**
 * The name of an item's task. The first is derived from job and item; later ones (planned again,
 * given a new task by the reconciler, handed over on a last attempt) carry a suffix that says why
 * and when, so each is created once however often its creator runs.
 */
export function itemTaskName(
  jobId: string,
  task: Pick<ItemTask, 'itemId' | 'plannedMs' | 'replan' | 'round' | 'handover' | 'repair' | 'retryOf'>,
): string {
  const base = itemTaskId(jobId, task.itemId);
  if (task.repair) return `${base}-fix`;
  if (task.retryOf !== undefined) return `${base}-a${task.retryOf}`;
  if (task.round !== undefined) return `${base}-r${task.round}`;
  if (task.handover !== undefined) return `${base}-h${task.handover}`;
  return task.replan && task.plannedMs !== undefined ? `${base}-p${Math.floor(task.plannedMs / 1000)}` : base;
}

/**
 * How long a control task (a page of a job's enqueuing) works before it hands over to a fresh one
 * (`functions/worker/enqueue-page.ts`).
 */
export const CONTROL_RUN_BUDGET_MS = 8 * 60_000;

/**
 * Cloud Tasks' wait for a control task: its run budget, plus a page begun just before the budget ran
 * out (500 task creations, backing off when a cold queue refuses them), within the service's 30 min.
 * Shorter, and a long enqueuing would be delivered again while it still runs; the worker's function
 * timeout (Terraform) must be at least this long.
 */
export const CONTROL_DISPATCH_DEADLINE_SECONDS = CONTROL_RUN_BUDGET_MS / 1000 + 120;

const ALREADY_EXISTS = 6;
const NOT_FOUND = 5;
const RESOURCE_EXHAUSTED = 8;
const UNAVAILABLE = 14;
/** Tries of one CreateTask refused for load (about 30 s of backing off in all). */
const CREATE_ATTEMPTS = 8;
/** Waits between creation attempts: 250 ms ± half of it at random, doubling (375 less up to 2/3). */
const CREATE_BACKOFF = { baseMs: 375, jitter: 2 / 3 };

async function mapLimit<T>(values: T[], limit: number, fn: (v: T) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async () => {
    while (next < values.length) {
      const v = values[next++]!;
      await fn(v);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, values.length) }, run));
}

export function createTaskQueue(options: TaskQueueOptions, client?: CloudTasksClient): TaskQueue {
  const tasks =
    client ??
    new CloudTasksClient(options.emulatorHost ? emulatorClientOptions(options.emulatorHost) : undefined);
  const { projectId, region } = options;
  const concurrency = options.concurrency ?? 64;
  const queuePath = (id: string) => tasks.queuePath(projectId, region, id);

  const httpRequest = (payload: TaskPayload) => ({
    url: options.workerUrl,
    httpMethod: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify(payload)),
    ...(options.serviceAccount
      ? { oidcToken: { serviceAccountEmail: options.serviceAccount, audience: options.workerUrl } }
      : {}),
  });

  const create = async (queueId: string, taskId: string, payload: TaskPayload, scheduleMs?: number) => {
    const parent = queuePath(queueId);
    // An item task's deadline covers one Gemini call (config.ts); a control task's, its run budget.
    const deadlineSeconds =
      payload.kind === 'item' || payload.kind === 'items'
        ? (options.dispatchDeadlineSeconds ?? 600)
        : CONTROL_DISPATCH_DEADLINE_SECONDS;
    await retry(
      async () => {
        try {
          await createOnce(parent, taskId, payload, deadlineSeconds, scheduleMs);
        } catch (err) {
          if ((err as { code?: number }).code !== ALREADY_EXISTS) throw err;
        }
      },
      {
        attempts: CREATE_ATTEMPTS,
        backoff: CREATE_BACKOFF,
        // A cold queue takes at most ~500 creations a second, growing 50% every 5 minutes (the
        // 500/50/5 rule): past that it answers RESOURCE_EXHAUSTED. Slow down, as the docs ask.
        retryable: (err) => [RESOURCE_EXHAUSTED, UNAVAILABLE].includes((err as { code?: number }).code ?? 0),
        sleep,
        random: Math.random,
      },
    );
  };

  const createOnce = async (
    parent: string,
    taskId: string,
    payload: TaskPayload,
    deadlineSeconds: number,
    scheduleMs?: number,
  ) => {
    await tasks.createTask({
      parent,
      task: {
        name: `${parent}/tasks/${taskId}`,
        httpRequest: httpRequest(payload),
        dispatchDeadline: { seconds: deadlineSeconds },
        ...(scheduleMs && scheduleMs > Date.now()
          ? { scheduleTime: { seconds: Math.floor(scheduleMs / 1000), nanos: (scheduleMs % 1000) * 1e6 } }
          : {}),
      },
    });
  };

  return {
    async enqueueItems(model, jobId, items, cut) {
      const queueId = queueIdForModel(model);
      await mapLimit(itemTaskSpecs(jobId, items, cut, itemTaskName), concurrency, (t) =>
        create(queueId, t.name, t.payload, t.scheduleMs),
      );
    },

    async handOver(queueName, jobId, task) {
      // X-CloudTasks-QueueName is the queue's short id; a full resource name is taken too.
      const queueId = /(?:^|\/queues\/)([A-Za-z0-9-]{1,100})$/.exec(queueName)?.[1];
      if (!queueId) throw new Error(`not a queue name: "${queueName}"`);
      const [spec] = itemTaskSpecs(jobId, [task], undefined, itemTaskName);
      await create(queueId, spec!.name, spec!.payload, spec!.scheduleMs);
    },

    async enqueueControl(payload, name, scheduleMs) {
      await create(CONTROL_QUEUE_ID, name, payload, scheduleMs);
    },

    async deleteItems(model, jobId, itemIds) {
      const queue = queuePath(queueIdForModel(model));
      let deleted = 0;
      await mapLimit(itemIds, concurrency, async (itemId) => {
        try {
          await tasks.deleteTask({ name: `${queue}/tasks/${itemTaskId(jobId, itemId)}` });
          deleted++;
        } catch (err) {
          if ((err as { code?: number }).code !== NOT_FOUND) throw err;
        }
      });
      return deleted;
    },

    async pauseModel(model) {
      await tasks.pauseQueue({ name: queuePath(queueIdForModel(model)) });
    },

    async resumeModel(model) {
      await tasks.resumeQueue({ name: queuePath(queueIdForModel(model)) });
    },

    async ensureQueues(quotas, options = {}) {
      const parent = tasks.locationPath(projectId, region);
      const retryConfig = {
        maxAttempts: quotas.queue.maxAttempts,
        minBackoff: {
          seconds: Math.floor(quotas.queue.minBackoffSeconds),
          nanos: Math.round((quotas.queue.minBackoffSeconds % 1) * 1e9),
        },
        maxBackoff: { seconds: Math.floor(quotas.queue.maxBackoffSeconds) },
        maxDoublings: quotas.queue.maxDoublings,
      };
      const slots =
        options.workerSlots === undefined ? undefined : queueConcurrency(quotas, options.workerSlots);
      const wanted = [
        ...Object.entries(quotas.models).map(([model, quota]) => {
          const limits = queueRateLimits(quota, quotas.headroom, quotas.itemsPerTask);
          const concurrent = slots?.models[model];
          return {
            id: queueIdForModel(model),
            rateLimits: concurrent ? { ...limits, maxConcurrentDispatches: concurrent } : limits,
          };
        }),
        {
          id: CONTROL_QUEUE_ID,
          rateLimits: {
            maxDispatchesPerSecond: CONTROL_QUEUE_MAX_CONCURRENT,
            maxConcurrentDispatches: slots?.control ?? CONTROL_QUEUE_MAX_CONCURRENT,
          },
        },
      ];
      for (const q of wanted) {
        const queue = { name: queuePath(q.id), rateLimits: q.rateLimits, retryConfig };
        try {
          await tasks.createQueue({ parent, queue });
        } catch (err) {
          if ((err as { code?: number }).code !== ALREADY_EXISTS) throw err;
          await tasks.updateQueue({ queue, updateMask: { paths: ['rate_limits', 'retry_config'] } });
        }
      }
    },
  };
}
