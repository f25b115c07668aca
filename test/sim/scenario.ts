/**
 * A run's scenario, drawn from its seed: the jobs clients submit (1–3 jobs of 3–20 items on 1–2
 * models, some with a callback, some cancelled), and how hostile the world is (queue, Gemini and
 * store faults). Every knob is drawn in a fixed order from the seed's `Rng`; `Profile` forces
 * knobs, so a test can aim at one kind of fault.
 */
import { CRASH_KINDS, type CrashKind, type FaultKnobs } from './faults.js';
import type { GeminiKnobs } from './gemini.js';
import type { MediaKnobs } from './media.js';
import type { Rng } from './rng.js';
import type { QueueKnobs } from './tasks.js';

export const MODELS = ['gemini-2.5-flash', 'gemini-2.5-pro'] as const;

export interface JobPlan {
  model: string;
  items: number;
  createAtMs: number;
  callback: boolean;
  /** Its items carry media (fetched by the worker before the call). */
  media: boolean;
  /** When the client cancels it (ms after start), if it does. */
  cancelAtMs?: number;
}

export interface Scenario {
  jobs: JobPlan[];
  queue: Omit<QueueKnobs, 'dispatchDeadlineMs'>;
  gemini: GeminiKnobs;
  media: Omit<MediaKnobs, 'deadlineMs'>;
  faults: FaultKnobs;
  /** Items a task carries at most (`quotas.itemsPerTask`): 1 for half the seeds, 2–8 for the rest. */
  itemsPerTask: number;
  /** The plan follows a cold queue's ramp (`quotas.queueRamp`), its tasks packed while it ramps: a quarter of the seeds. */
  queueRamp: boolean;
}

/** Knobs a test forces, whatever the seed draws. */
export interface Profile {
  queue?: Partial<Scenario['queue']>;
  gemini?: Partial<GeminiKnobs>;
  media?: Partial<Scenario['media']>;
  faults?: Partial<FaultKnobs>;
  cancelShare?: number;
  itemsPerTask?: number;
  queueRamp?: boolean;
}

/** Named runs a test aims at one fault with; `SIM_PROFILE=<name>` replays a seed of one. */
export const PROFILES: Record<
  string,
  { profile: Profile; orphanSweep?: boolean; reconcileLimits?: { items?: number; jobs?: number } }
> = {
  // Deliveries that never reach the worker after a release, and the reconciler's sweep of
  // orphaned items switched off: issue 17's scenario 1 must show.
  'orphan-sweep-off': {
    profile: {
      queue: { frontFailShare: 0.3, maxAttempts: 3 },
      gemini: { unavailableShare: 0.3 },
      cancelShare: 0,
    },
    orphanSweep: false,
  },
  // Daily quotas run out often and store writes fail now and then: the pause and its record.
  'daily-quota': {
    profile: { gemini: { dayQuotaShare: 0.05 }, faults: { errorShare: 0.02 }, queue: { outages: [] } },
  },
  // Ticks crash at their await points while deliveries hang (leases run out): the reconciler's
  // own retask and give-up, interrupted.
  'tick-crashes': {
    profile: {
      faults: { actorCrashShare: { tick: 0.05, worker: 0.02 } },
      queue: { outages: [], frontFailShare: 0 },
    },
  },
  // The reconciler's bounds made tiny (a job and two items per tick), so a few jobs stand for
  // hundreds: a reconciler that always reads the same first page leaves the others behind.
  'small-reconcile-window': {
    profile: { queue: { outages: [] }, faults: { actorCrashShare: { worker: 0.02 } } },
    reconcileLimits: { jobs: 1, items: 2 },
  },
  // Several items a task, with transient Gemini faults and duplicate deliveries: a task whose items
  // end differently is retried, and its finished items are never run twice.
  'multi-item': {
    profile: { itemsPerTask: 4, gemini: { unavailableShare: 0.2 }, queue: { duplicateShare: 0.2 } },
  },
  // Slow media, slow answers and slow store calls: a delivery close to its lease.
  slow: {
    profile: {
      media: { slowShare: 0.8 },
      gemini: { slowShare: 0.5 },
      faults: { latencyShare: 0.5, slowStoreShare: 0.2 },
      queue: { outages: [], frontFailShare: 0 },
    },
  },
};

/** Crashes are drawn among this many first calls: a small run makes a few hundred. */
const CRASH_WINDOW = 600;

export function drawScenario(rng: Rng, startMs: number, profile: Profile = {}): Scenario {
  const models = rng.chance(0.5) ? [MODELS[0]] : [...MODELS];
  const jobs = Array.from({ length: rng.int(1, 3) }, (): JobPlan => {
    const cancel = rng.chance(profile.cancelShare ?? 0.1);
    return {
      model: rng.pick(models),
      items: rng.int(3, 20),
      createAtMs: startMs + rng.int(0, 30_000),
      callback: rng.chance(0.5),
      media: rng.chance(0.3),
      ...(cancel ? { cancelAtMs: startMs + rng.int(0, 120_000) } : {}),
    };
  });
  const outages = rng.chance(0.15)
    ? [{ fromMs: startMs + rng.int(0, 60_000), toMs: 0 }].map((o) => ({
        ...o,
        toMs: o.fromMs + rng.int(60_000, 20 * 60_000),
      }))
    : [];
  const queue = {
    maxAttempts: rng.pick([3, 5, 10, 30]),
    minBackoffMs: 1000,
    maxBackoffMs: rng.pick([60_000, 300_000]),
    maxDoublings: rng.pick([3, 5]),
    frontFailShare: rng.pick([0, 0, 0.02, 0.1, 0.3]),
    outages,
    duplicateShare: rng.pick([0, 0.05, 0.2]),
    jitterMs: rng.pick([0, 500, 3000]),
    ...profile.queue,
  };
  const gemini: GeminiKnobs = {
    quotaShare: rng.pick([0, 0.05, 0.2]),
    dayQuotaShare: rng.pick([0, 0, 0.01, 0.03]),
    // Runs start ten minutes before Pacific midnight.
    dayResetMs: startMs + 10 * 60_000,
    unavailableShare: rng.pick([0, 0.05, 0.2]),
    hangShare: rng.pick([0, 0, 0.02, 0.1]),
    slowShare: rng.pick([0, 0.05, 0.2]),
    countFailShare: rng.pick([0, 0.1]),
    ...profile.gemini,
  };
  const media = {
    slowShare: rng.pick([0, 0.1, 0.3]),
    failShare: rng.pick([0, 0.05]),
    ...profile.media,
  };
  const faults: FaultKnobs = {
    crashes: drawCrashes(rng),
    errorShare: rng.pick([0, 0, 0.005, 0.02]),
    latencyShare: rng.pick([0, 0.1, 0.5]),
    slowStoreShare: 0.01,
    storeOutages: rng.chance(0.15)
      ? [{ fromMs: startMs + rng.int(0, 120_000), toMs: 0 }].map((o) => ({
          ...o,
          toMs: o.fromMs + rng.int(500, 5000),
        }))
      : [],
    actorCrashShare: rng.chance(0.2) ? { [rng.pick(['ingest', 'worker', 'tick'] as const)]: 0.01 } : {},
    ...profile.faults,
  };
  // Drawn last, so the knobs above stay what each seed drew before multi-item tasks existed.
  const itemsPerTask = profile.itemsPerTask ?? rng.pick([1, 1, 1, 1, 2, 3, 4, 8]);
  const queueRamp = profile.queueRamp ?? rng.chance(0.25);
  return { jobs, queue, gemini, media, faults, itemsPerTask, queueRamp };
}

function drawCrashes(rng: Rng): Map<number, CrashKind> {
  const crashes = new Map<number, CrashKind>();
  const n = rng.pick([0, 1, 1, 2, 3]);
  for (let i = 0; i < n; i++) crashes.set(rng.int(1, CRASH_WINDOW), rng.pick(CRASH_KINDS));
  return crashes;
}

/** One line per knob that is not benign, for a failure report. */
export function describeScenario(s: Scenario, startMs: number): string {
  const rel = (ms: number) => `${((ms - startMs) / 1000).toFixed(1)}s`;
  const jobs = s.jobs
    .map(
      (j) =>
        `${j.items} items${j.media ? ' with media' : ''} on ${j.model} at ${rel(j.createAtMs)}${j.callback ? ', callback' : ''}${j.cancelAtMs !== undefined ? `, cancel at ${rel(j.cancelAtMs)}` : ''}`,
    )
    .join('; ');
  const q = s.queue;
  const outages = q.outages.map((o) => `${rel(o.fromMs)}–${rel(o.toMs)}`).join(', ');
  const crashes = [...s.faults.crashes].map(([n, k]) => `#${n} ${k}`).join(', ');
  return [
    `jobs: ${jobs}`,
    `queue: maxAttempts ${q.maxAttempts}, front 429/503 ${q.frontFailShare}, duplicates ${q.duplicateShare}, jitter ${q.jitterMs} ms${outages ? `, worker outage ${outages}` : ''}`,
    `media: slow ${s.media.slowShare}, failing ${s.media.failShare}`,
    `tasks: up to ${s.itemsPerTask} item${s.itemsPerTask > 1 ? 's' : ''} each${s.queueRamp ? ', more while a cold queue ramps' : ''}`,
    `gemini: 429 ${s.gemini.quotaShare}, 429/day ${s.gemini.dayQuotaShare}, 503 ${s.gemini.unavailableShare}, hang ${s.gemini.hangShare}, slow ${s.gemini.slowShare}`,
    `faults: crashes [${crashes}], by actor ${JSON.stringify(s.faults.actorCrashShare)}, errors ${s.faults.errorShare}, store latency ${s.faults.latencyShare}${s.faults.storeOutages.length ? `, store outage ${s.faults.storeOutages.map((o) => `${rel(o.fromMs)}–${rel(o.toMs)}`).join(', ')}` : ''}`,
  ].join('\n');
}
