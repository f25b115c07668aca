/**
 * One simulated run: the REAL lifecycle, planner, worker handler and tick, wired as
 * `platform/deps.ts` wires them, over the fake stores (on the simulated clock) behind fault
 * wrappers, a simulated Cloud Tasks and a simulated Gemini. Clients submit jobs as ingest does
 * (the lifecycle's create with an Idempotency-Key, then the first enqueue task), retry when the
 * call fails or hangs, and cancel some; the scheduler ticks every minute. The run ends once every
 * job a client could see is terminal and no callback waits in the outbox (then goes on ten more
 * minutes, for late writes) or after six simulated hours; then the invariants are checked.
 */

import { dueWindowMs } from '../../functions/core/due.js';
import { isTerminalJob, type JobView } from '../../functions/core/jobs.js';
import type { Quotas } from '../../functions/core/quotas.js';
import { adaptiveEverywhere } from '../../functions/core/quotas-adaptive.js';
import { createLifecycle } from '../../functions/lifecycle/lifecycle.js';
import { createPlanner } from '../../functions/lifecycle/plan.js';
import { dispatchDeadlineFor } from '../../functions/platform/config.js';
import { createLogger } from '../../functions/platform/logger.js';
import { mediaDeadlinesFor } from '../../functions/platform/media/index.js';
import type { Stores } from '../../functions/platform/store/index.js';
import { type TickDeps, tick } from '../../functions/tick/handler.js';
import { handleTask, type TaskDelivery, type WorkerDeps } from '../../functions/worker/handler.js';
import { FakeDb } from '../helpers/fake-stores.js';
import { FakeObjectStore } from '../helpers/fakes.js';
import { testQuotas } from '../helpers/test-quotas.js';
import { Clients } from './clients.js';
import { SimClock } from './clock.js';
import { type Actor, Faults } from './faults.js';
import { promptOf, SimGemini } from './gemini.js';
import { checkInvariants, Effects, type Violation } from './invariants.js';
import { SimMedia } from './media.js';
import { Rng } from './rng.js';
import { describeScenario, drawScenario, type Profile, type Scenario } from './scenario.js';
import { SimTaskQueue } from './tasks.js';
import { Trace } from './trace.js';

export interface SimOptions {
  seed: number;
  profile?: Profile;
  /** Passed to the reconciler (`ReconcileDeps.orphanSweep`, where the product has it). */
  orphanSweep?: boolean;
  /** The reconciler's bounds per run (`ReconcileDeps.limits`). */
  reconcileLimits?: { items?: number; jobs?: number };
  /** Print the trace as it happens. */
  echo?: boolean;
  /** Every model's rate adapts (Vertex AI, `rpm: "auto"`: core/adaptive-rate.ts). */
  adaptive?: boolean;
}

export interface SimResult {
  seed: number;
  violations: Violation[];
  trace: Trace;
  scenario: string;
  stats: { simSeconds: number; events: number; calls: number; deliveries: number; dropped: number };
}

/** Ten minutes before midnight in California: a queue paused for the day resumes within the run. */
export const START_MS = Date.parse('2026-01-06T07:50:00Z');
const BOUND_MS = 6 * 3_600_000;
const AFTER_DONE_MS = 10 * 60_000;
const TICK_MS = 60_000;
const STALL_MS = 120_000;
const GEMINI_TIMEOUT_MS = 20_000;

export async function runSimulation(options: SimOptions): Promise<SimResult> {
  const rng = new Rng(options.seed);
  const clock = new SimClock(START_MS);
  const trace = new Trace(clock.now, START_MS, options.echo);
  const scenario = drawScenario(rng, START_MS, options.profile);
  const w = wire(scenario, rng, clock, trace, options);
  const clients = new Clients(scenario, w, clock, trace);
  clients.start();
  scheduleTicks(w, clock, trace, START_MS + rng.int(0, TICK_MS));
  // Quiet: no client at work, every job ended, and no callback still waiting in the outbox.
  const done = () =>
    clients.busy === 0 &&
    [...w.db.jobs.values()].every(settled) &&
    [...w.db.callbacks.values()].every((c) => c.state !== 'pending');
  const violations: Violation[] = [];
  try {
    await clock.run(START_MS + BOUND_MS, done);
    if (done()) await clock.run(clock.now() + AFTER_DONE_MS, () => false);
  } catch (err) {
    violations.push({ invariant: 'sim-error', detail: (err as Error).message });
  }
  violations.push(
    ...checkInvariants({
      db: w.db,
      effects: w.effects,
      gemini: w.gemini,
      notified: w.notified,
      promptOf,
      liveTasks: w.queue.liveItems(),
    }),
  );
  return {
    seed: options.seed,
    violations,
    trace,
    scenario: describeScenario(scenario, START_MS),
    stats: {
      simSeconds: Math.round((clock.now() - START_MS) / 1000),
      events: clock.fired,
      calls: w.faults.calls,
      deliveries: w.queue.deliveries,
      dropped: w.queue.dropped.length,
    },
  };
}

const settled = (j: { status: Parameters<typeof isTerminalJob>[0]; cancelPending: boolean }) =>
  isTerminalJob(j.status) && !j.cancelPending;

export type World = ReturnType<typeof wire>;

/**
 * The product's dependencies, as `createDeps` builds them, on the simulated world: one set per
 * actor (ingest, worker, tick) over the same fakes, so faults can aim at one actor's await points.
 */
function wire(scenario: Scenario, rng: Rng, clock: SimClock, trace: Trace, options: SimOptions) {
  const fixed = simQuotas(scenario);
  const quotas = options.adaptive ? adaptiveEverywhere(fixed) : fixed;
  const db = new FakeDb(clock.now);
  const effects = new Effects();
  const faults = new Faults(clock, rng, trace, scenario.faults);
  const observed = effects.observe(db);
  const gemini = new SimGemini(clock, rng, trace, scenario.gemini);
  const notified = new Map<string, number>();
  const notifier = {
    async notify(_url: string, job: JobView) {
      notified.set(job.id, (notified.get(job.id) ?? 0) + 1);
      trace.add(`callback ${job.id} ${job.status}`);
    },
  };
  const dispatchDeadlineMs = dispatchDeadlineFor(GEMINI_TIMEOUT_MS) * 1000;
  // As config.ts derives it.
  const leaseMs = dispatchDeadlineMs + 30_000;
  const { itemDeadlineMs } = mediaDeadlinesFor(leaseMs, GEMINI_TIMEOUT_MS);
  const simMedia = new SimMedia(clock, rng, trace, { ...scenario.media, deadlineMs: itemDeadlineMs });
  const objectStore = new FakeObjectStore();
  const deliver = (delivery: TaskDelivery) =>
    handleTask(delivery, workerDeps).catch((err: Error) => {
      trace.add(`worker threw: ${err.message}`);
      return { status: 500, body: { outcome: 'error' } };
    });
  const queue = new SimTaskQueue(clock, rng, trace, { ...scenario.queue, dispatchDeadlineMs }, deliver);

  /** The lifecycle and planner over deps whose calls count as `actor`'s. */
  const productFor = (actor: Actor) => {
    const stores = wrapStores(faults, observed, actor);
    const tasks = faults.wrap('tasks', 'tasks', queue, false, actor);
    const notify = faults.wrap('notify', 'callback', notifier, false, actor);
    const common = { stores, logger: createLogger({ level: 'silent' }), stallMs: STALL_MS, now: clock.now };
    const lifecycle = createLifecycle({
      ...common,
      tasks,
      dueWindowMs: dueWindowMs(quotas.queue, dispatchDeadlineMs / 1000),
      objects: faults.wrap('objects', 'bucket', objectStore, true, actor),
      notify: (url, job) => notify.notify(url, job),
      sleep: clock.sleep,
    });
    const counter = faults.wrap('gemini', 'gemini', gemini, false, actor);
    const planner = createPlanner({
      ...common,
      tasks,
      counter,
      quotas,
      dispatchDeadlineSeconds: dispatchDeadlineMs / 1000,
    });
    return { ...common, tasks, lifecycle, planner, gemini: counter };
  };
  const worker = productFor('worker');
  const workerDeps: WorkerDeps = {
    ...worker,
    media: faults.wrap('media', 'media', simMedia, false, 'worker'),
    quotas,
    leaseMs,
    geminiTimeoutMs: GEMINI_TIMEOUT_MS,
    enqueueBudgetMs: 8 * 60_000,
  };
  const ticker = productFor('tick');
  const tickDeps: TickDeps = {
    ...ticker,
    pauses: ticker.stores.pauses,
    callbacks: { callbacks: ticker.stores.callbacks },
    ...(options.reconcileLimits ? { limits: options.reconcileLimits } : {}),
    ...(options.orphanSweep === undefined ? {} : { orphanSweep: options.orphanSweep }),
  };
  const { lifecycle } = productFor('ingest');
  return { db, effects, faults, gemini, notified, queue, quotas, lifecycle, tickDeps };
}

function wrapStores(faults: Faults, s: Stores, actor: Actor): Stores {
  return {
    jobs: faults.wrap('store', 'jobs', s.jobs, true, actor),
    items: faults.wrap('store', 'items', s.items, true, actor),
    counters: faults.wrap('store', 'counters', s.counters, true, actor),
    ledger: faults.wrap('store', 'ledger', s.ledger, true, actor),
    pauses: faults.wrap('store', 'pauses', s.pauses, true, actor),
    callbacks: faults.wrap('store', 'callbacks', s.callbacks, true, actor),
    // The simulation's worker runs without the response cache.
    responseCache: s.responseCache,
  };
}

/** The unit tests' two models, with the retry policy of this run's queue (as Terraform sizes it from quotas). */
function simQuotas(scenario: Scenario): Quotas {
  const knobs = scenario.queue;
  const q = testQuotas();
  return {
    ...q,
    itemsPerTask: scenario.itemsPerTask,
    // The local strict cloud's ramp: a cold queue's tasks carry up to 5× k items while it ramps.
    queueRamp: scenario.queueRamp ? { startShare: 0.2, seconds: 30, idleSeconds: 60 } : false,
    queue: {
      ...q.queue,
      maxAttempts: knobs.maxAttempts,
      minBackoffSeconds: knobs.minBackoffMs / 1000,
      maxBackoffSeconds: knobs.maxBackoffMs / 1000,
      maxDoublings: knobs.maxDoublings,
    },
  };
}

/** Cloud Scheduler: a tick every minute, each on its own (a hung tick does not stop the next). */
function scheduleTicks(w: World, clock: SimClock, trace: Trace, firstMs: number): void {
  clock.at(firstMs, () => {
    void tick(w.tickDeps).then(
      (r) => {
        const did = Object.entries(r.reconciled ?? {}).filter(([, n]) => typeof n === 'number' && n > 0);
        if (r.failed.length > 0) trace.add(`tick duties failed: ${r.failed.join(', ')}`);
        if (did.length > 0) trace.add(`tick: ${did.map(([k, n]) => `${k} ${n}`).join(', ')}`);
      },
      (err: Error) => trace.add(`tick threw: ${err.message}`),
    );
    scheduleTicks(w, clock, trace, firstMs + TICK_MS);
  });
}
