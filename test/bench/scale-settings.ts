import { readQuotas } from '../../functions/platform/config.js';
import { generatedQuotas } from './compare-settings.js';

/**
 * The settings of the scale benchmark (test/bench/scale.ts), read from the environment; every one
 * has a default, and only a run with every default writes bench/results/ (any other writes
 * .local/scale/). E.g. `SCALE_N=100,1000 SCALE_SHARED_N=500` makes a quick run.
 *
 * The quota is high on purpose, so the biggest run stays short: 30,000 RPM (the queue's rate is then
 * just under Cloud Tasks' 500 dispatches a second) and a TPM no short prompt reaches, so every run
 * is RPM-bound and 50,000 prompts' limit is 100 s. The shared part puts several models on the
 * system at once, each at its own quota.
 */
export interface ScaleSettings {
  /** Prompt counts of part (a), one model at a time. */
  ns: number[];
  rpm: number;
  tpm: number;
  latencyMs: number;
  promptChars: number;
  /** Part (b): `models` models at once, `n` prompts each, each model at `rpm`; null skips it. */
  shared: { models: number; n: number; rpm: number } | null;
  /** Prompts of the warm-up job before anything is measured (0: none). */
  warmUp: number;
  /** How often the functions' memory is read. */
  sampleMs: number;
  /** Seconds of quiet before each run, so one run's tail is not the next one's start. */
  settleS: number;
  /** A run is stopped at min(maxS, max(minS, factor × its limit)). */
  cap: { maxS: number; minS: number; factor: number };
  /**
   * Requests one local worker instance serves at once (`FANOUT_WORKER_CONCURRENCY` of the local
   * cloud; its 2 instances make the slots). Every queue gets a share of the slots in proportion to
   * its RPM over every model of the quota file (core/queue-concurrency.ts), and this file lists 9
   * models of which one (or four) run at once: at the local default of 200, the 30,000 RPM queue
   * got 61 concurrent dispatches, about 170 a second at this latency, a third of its rate. 1,000
   * sizes the worker for the queues that run, as a deployment that lists more models than it runs
   * at once must (README, "Against the async scripts people already have").
   */
  workerConcurrency: number;
  /**
   * Runs of the cells with targets (the largest N, and the models at once), each after the model's
   * minute has cleared (`repeatSettleS`), on the same model: the report gives their median.
   */
  repeats: number;
  repeatSettleS: number;
  /**
   * Items a task carries at most (the quotas file's `itemsPerTask`, README "Several items a task"):
   * 1 by default, as deployed; `SCALE_ITEMS_PER_TASK=8` measures the same cells with tasks of 8.
   */
  itemsPerTask: number;
  /**
   * How often the local Cloud Scheduler calls tick: once a minute, as deployed (scheduler.tf), not
   * the local cloud's 10 s. Each tick's reconciler sweeps every job's items, and the Firestore
   * emulator answers those queries by scanning them: a sweep every 10 s costs it six times what a
   * deployment's cadence does.
   */
  tickEveryMs: number;
  /** The local cloud's profile (`SCALE_PROFILE`): strict by default, or ideal. */
  profile: 'strict' | 'ideal';
  isDefault: boolean;
}

const DEFAULTS = {
  SCALE_N: '100,1000,10000,50000',
  SCALE_RPM: '30000',
  SCALE_TPM: '100000000',
  SCALE_LATENCY_MS: '300',
  SCALE_PROMPT_CHARS: '60',
  SCALE_SHARED_MODELS: '4',
  SCALE_SHARED_N: '5000',
  SCALE_SHARED_RPM: '6000',
  SCALE_WARMUP: '500',
  SCALE_SAMPLE_MS: '500',
  SCALE_WORKER_CONCURRENCY: '1000',
  SCALE_REPEATS: '5',
  SCALE_REPEAT_SETTLE_S: '65',
  SCALE_SETTLE_S: '5',
  SCALE_CAP_S: '600',
  SCALE_CAP_MIN_S: '60',
  SCALE_CAP_FACTOR: '8',
  SCALE_ITEMS_PER_TASK: '1',
  SCALE_TICK_MS: '60000',
  SCALE_PROFILE: 'strict',
} as const;

type Name = keyof typeof DEFAULTS;

function number(raw: string, name: Name, min: number): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min)
    throw new Error(`${name} must be a number ≥ ${min}, not ${raw}`);
  return value;
}

/** Reads the settings; names the variable that is wrong. `SCALE_SHARED_MODELS=0` skips part (b). */
export function readScaleSettings(env: NodeJS.ProcessEnv): ScaleSettings {
  const get = (name: Name) => env[name] ?? DEFAULTS[name];
  const whole = (name: Name, min = 1) => Math.floor(number(get(name), name, min));
  const ns = get('SCALE_N')
    .split(',')
    .map((s) => Math.floor(number(s.trim(), 'SCALE_N', 1)));
  const models = whole('SCALE_SHARED_MODELS', 0);
  return {
    ns,
    rpm: number(get('SCALE_RPM'), 'SCALE_RPM', 1),
    tpm: number(get('SCALE_TPM'), 'SCALE_TPM', 1),
    latencyMs: number(get('SCALE_LATENCY_MS'), 'SCALE_LATENCY_MS', 0),
    promptChars: whole('SCALE_PROMPT_CHARS'),
    shared:
      models > 0
        ? { models, n: whole('SCALE_SHARED_N'), rpm: number(get('SCALE_SHARED_RPM'), 'SCALE_SHARED_RPM', 1) }
        : null,
    warmUp: whole('SCALE_WARMUP', 0),
    sampleMs: number(get('SCALE_SAMPLE_MS'), 'SCALE_SAMPLE_MS', 50),
    settleS: number(get('SCALE_SETTLE_S'), 'SCALE_SETTLE_S', 0),
    cap: {
      maxS: number(get('SCALE_CAP_S'), 'SCALE_CAP_S', 1),
      minS: number(get('SCALE_CAP_MIN_S'), 'SCALE_CAP_MIN_S', 1),
      factor: number(get('SCALE_CAP_FACTOR'), 'SCALE_CAP_FACTOR', 1),
    },
    workerConcurrency: whole('SCALE_WORKER_CONCURRENCY'),
    repeats: whole('SCALE_REPEATS'),
    repeatSettleS: number(get('SCALE_REPEAT_SETTLE_S'), 'SCALE_REPEAT_SETTLE_S', 0),
    itemsPerTask: whole('SCALE_ITEMS_PER_TASK'),
    tickEveryMs: whole('SCALE_TICK_MS', 0),
    profile: profileOf(get('SCALE_PROFILE')),
    isDefault: (Object.keys(DEFAULTS) as Name[]).every(
      (name) => env[name] === undefined || env[name] === DEFAULTS[name],
    ),
  };
}

function profileOf(value: string): 'strict' | 'ideal' {
  if (value !== 'strict' && value !== 'ideal')
    throw new Error(`SCALE_PROFILE: strict or ideal, not ${value}`);
  return value;
}

export const WARM_UP_MODEL = 'scale-warm-up';

/** The model of part (a)'s run of `n` prompts: each run has its own, so no quota window holds another's requests. */
export function singleModelOf(n: number): string {
  return `scale-n-${n}`;
}

/** The i-th (from 1) model of part (b). */
export function sharedModelOf(i: number): string {
  return `scale-shared-${i}`;
}

/**
 * The quotas file the local cloud is booted with: every model the runs use at its limits, the
 * prices of gemini-2.5-flash-lite, and the bundled file's queue policy and headroom.
 */
export function scaleQuotas(settings: ScaleSettings): unknown {
  const bundled = readQuotas();
  const tier = bundled.models['gemini-2.5-flash-lite']!;
  const limits = (rpm: number) => ({ rpm, tpm: settings.tpm, rpd: null, batch: true, price: tier.price });
  const models: Record<string, unknown> = { [WARM_UP_MODEL]: limits(settings.rpm) };
  for (const n of settings.ns) models[singleModelOf(n)] = limits(settings.rpm);
  for (let i = 1; i <= (settings.shared?.models ?? 0); i++) {
    models[sharedModelOf(i)] = limits(settings.shared!.rpm);
  }
  const quotas = generatedQuotas(
    bundled,
    'Generated by test/bench/scale.ts: one model per run, each at the quota of its part.',
    'scale',
    WARM_UP_MODEL,
    models,
  );
  return { ...(quotas as object), itemsPerTask: settings.itemsPerTask };
}
