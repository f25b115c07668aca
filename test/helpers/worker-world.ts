/**
 * One job on the fakes, with the real lifecycle, planner and worker handler, on a simulated clock:
 * every wait (`sleep`) moves the clock instead of passing real time, so a store outage of minutes
 * runs in milliseconds and a test says exactly when each delivery happens.
 */

import type { Quotas } from '../../functions/core/quotas.js';
import { normalizeJobRequest } from '../../functions/core/requests.js';
import { createLifecycle } from '../../functions/lifecycle/lifecycle.js';
import { createPlanner } from '../../functions/lifecycle/plan.js';
import type { Logger } from '../../functions/platform/logger.js';
import { createLogger } from '../../functions/platform/logger.js';
import { itemTaskId } from '../../functions/platform/task-queue.js';
import type { TaskDelivery, WorkerDeps } from '../../functions/worker/handler.js';
import { FakeDb } from './fake-stores.js';
import {
  FakeGemini,
  FakeMediaFetcher,
  FakeObjectStore,
  FakeTaskQueue,
  fakeNotify,
  type fakeWorld,
} from './fakes.js';
import { createLogCapture } from './log-capture.js';
import { testQuotas } from './test-quotas.js';

export const SIM_JOB = 'job-1';
export const SIM_ITEM = '000000000';
export const SIM_T0 = Date.parse('2024-07-01T19:00:00Z');
/** The worker's bounds in unit tests: a minute's lease and enqueue budget, 10 s for a Gemini call. */
export const TEST_WORKER_BOUNDS = { leaseMs: 60_000, geminiTimeoutMs: 10_000, enqueueBudgetMs: 60_000 };

/**
 * The worker's deps on a {@link fakeWorld}: its lifecycle, planner and tasks (and Gemini, unless
 * `base.gemini`), no media, the test bounds and the test's clock; `extra` overrides any of them.
 */
export function workerDepsOn(
  world: Pick<ReturnType<typeof fakeWorld>, 'lifecycle' | 'planner' | 'tasks' | 'gemini'>,
  base: { quotas: Quotas; logger: Logger; now: () => number; gemini?: WorkerDeps['gemini'] },
  extra: Partial<WorkerDeps> = {},
): WorkerDeps {
  return {
    lifecycle: world.lifecycle,
    planner: world.planner,
    gemini: base.gemini ?? world.gemini,
    tasks: world.tasks,
    media: new FakeMediaFetcher(),
    quotas: base.quotas,
    logger: base.logger,
    ...TEST_WORKER_BOUNDS,
    now: base.now,
    ...extra,
  };
}
const QUEUE = 'projects/fanout-local/locations/us-central1/queues/fanout-gemini-2-5-flash';

/** A simulated clock: `sleep` advances it. */
export function simClock(start = SIM_T0) {
  const clock = {
    ms: start,
    now: () => clock.ms,
    advance: (ms: number) => {
      clock.ms += ms;
    },
    sleep: async (ms: number) => {
      clock.ms += ms;
      await new Promise<void>((r) => setImmediate(r));
    },
  };
  return clock;
}

export async function simWorkerWorld(options: { body?: Record<string, unknown> } = {}) {
  const quotas = testQuotas();
  const clock = simClock();
  const capture = createLogCapture();
  const logger = createLogger({ destination: capture.stream });
  const db = new FakeDb(clock.now);
  const tasks = new FakeTaskQueue();
  const objects = new FakeObjectStore();
  const gemini = new FakeGemini();
  const media = new FakeMediaFetcher();
  const common = { stores: db.stores, logger, stallMs: 60_000, now: clock.now };
  const lifecycle = createLifecycle({
    ...common,
    tasks,
    objects,
    notify: fakeNotify().notify,
    sleep: clock.sleep,
  });
  const planner = createPlanner({ ...common, tasks, quotas });
  const job = normalizeJobRequest(options.body ?? { prompts: ['What is 2 + 2?'] }, quotas);
  await lifecycle.create(
    { id: SIM_JOB, model: job.model, mode: 'realtime', total: job.items.length, source: 'api' },
    job.items,
  );
  const deps: WorkerDeps = {
    lifecycle,
    planner,
    gemini,
    tasks,
    media,
    quotas,
    logger,
    ...TEST_WORKER_BOUNDS,
    now: clock.now,
    // The worker's own waits (the bound on a replanning) never end unless a test says so.
    sleep: () => new Promise<void>(() => undefined),
  };
  return { db, tasks, objects, gemini, media, capture, clock, quotas, deps, lifecycle, planner };
}

/** A delivery of the item's task: its `retryCount`, and the plan the task carries. */
export function simDelivery(retryCount = 0, plannedMs?: number, itemId = SIM_ITEM): TaskDelivery {
  return {
    queueName: QUEUE,
    taskName: `${QUEUE}/tasks/${itemTaskId(SIM_JOB, itemId)}`,
    retryCount,
    executionCount: retryCount,
    payload: { kind: 'item', jobId: SIM_JOB, itemId, ...(plannedMs === undefined ? {} : { plannedMs }) },
  };
}
