import { readQuotas } from '../../functions/platform/config.js';
import { STRICT_QUEUE_RAMP } from '../../infra/local/cloud-tasks/profile.js';

/**
 * The comparison's settings, read from the environment (every one has a default; `COMPARE_N=100`
 * makes a quick run), and the quotas file the local cloud is booted with.
 *
 * By default the quota is one real tier's: that of `gemini-2.5-flash-lite` in infra/quotas.json
 * (4,000 RPM, 4,000,000 TPM, its prices, the queue policy and headroom beside it). Short prompts are
 * then bound by RPM, long ones (1,500 tokens as the stand-in counts them) by TPM.
 */
export const SYSTEMS = [
  'gemini-fanout',
  'sequential',
  'promise-all',
  'semaphore-10',
  'rule-of-thumb',
] as const;
export type SystemName = (typeof SYSTEMS)[number];

export const REGIMES = ['rpm', 'tpm'] as const;
export type RegimeName = (typeof REGIMES)[number];

export interface Regime {
  name: RegimeName;
  label: string;
  promptChars: number;
}

export interface CompareSettings {
  ns: number[];
  regimes: Regime[];
  systems: SystemName[];
  latencyMs: number;
  /** The model whose tier (limits, prices, queue policy) the quotas file copies. */
  tierModel: string;
  rpm: number;
  tpm: number;
  /** A run is stopped at min(maxS, max(minS, factor × its limit)). */
  cap: { maxS: number; minS: number; factor: number };
  /** The Batch API line: prompts per job and the stand-in's batch timing; null skips it. */
  batch: { n: number; pendingMs: number; runningMs: number } | null;
  /** Prompts of the warm-up job gemini-fanout runs before anything is measured. */
  warmUp: number;
  /** Whether gemini-fanout plans for the strict queues' ramp (`queueRamp`), its tasks packed while they ramp. */
  ramp: boolean;
  /**
   * Requests one local worker instance serves at once (FANOUT_WORKER_CONCURRENCY): the quotas file
   * lists a model per run (33), and each queue gets its RPM's share of the worker's slots, so the
   * local default (200) would leave the one queue that runs a few dozen.
   */
  workerConcurrency: number;
  /** Whether every setting is the default: only such a run writes bench/results/. */
  isDefault: boolean;
}

const DEFAULTS = {
  COMPARE_N: '100,1000,5000',
  COMPARE_REGIMES: REGIMES.join(','),
  COMPARE_SYSTEMS: SYSTEMS.join(','),
  COMPARE_LATENCY_MS: '300',
  COMPARE_TIER_MODEL: 'gemini-2.5-flash-lite',
  COMPARE_SHORT_CHARS: '60',
  COMPARE_LONG_CHARS: '4800',
  COMPARE_CAP_S: '240',
  COMPARE_CAP_MIN_S: '60',
  COMPARE_CAP_FACTOR: '2.5',
  COMPARE_BATCH_N: '1000',
  COMPARE_BATCH_PENDING_MS: '200',
  COMPARE_BATCH_RUNNING_MS: '1000',
  COMPARE_WARMUP: '500',
  COMPARE_RAMP: 'on',
  COMPARE_WORKER_CONCURRENCY: '2000',
} as const;

function list<T extends string>(raw: string, allowed: readonly T[], name: string): T[] {
  const items = raw.split(',').map((s) => s.trim()) as T[];
  const bad = items.filter((s) => !allowed.includes(s));
  if (bad.length > 0 || items.length === 0) {
    throw new Error(`${name}: ${bad.join(', ') || '(empty)'} not among ${allowed.join(', ')}`);
  }
  return items;
}

function positive(raw: string, name: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, not ${raw}`);
  return value;
}

/** Reads the settings; names the variable that is wrong. `COMPARE_BATCH_N=0` skips the Batch API line. */
export function readCompareSettings(env: NodeJS.ProcessEnv): CompareSettings {
  const get = (name: keyof typeof DEFAULTS) => env[name] ?? DEFAULTS[name];
  const isDefault = (Object.keys(DEFAULTS) as Array<keyof typeof DEFAULTS>).every(
    (name) => env[name] === undefined || env[name] === DEFAULTS[name],
  );
  const tierModel = get('COMPARE_TIER_MODEL');
  const tier = readQuotas().models[tierModel];
  if (!tier) throw new Error(`COMPARE_TIER_MODEL: ${tierModel} is not in infra/quotas.json`);
  const ns = get('COMPARE_N')
    .split(',')
    .map((s) => Math.floor(positive(s, 'COMPARE_N')));
  const labels: Record<RegimeName, string> = {
    rpm: 'RPM-bound (short prompts)',
    tpm: 'TPM-bound (long prompts)',
  };
  const chars: Record<RegimeName, number> = {
    rpm: Math.floor(positive(get('COMPARE_SHORT_CHARS'), 'COMPARE_SHORT_CHARS')),
    tpm: Math.floor(positive(get('COMPARE_LONG_CHARS'), 'COMPARE_LONG_CHARS')),
  };
  const batchN = Number(get('COMPARE_BATCH_N'));
  return {
    ns,
    regimes: list(get('COMPARE_REGIMES'), REGIMES, 'COMPARE_REGIMES').map((name) => ({
      name,
      label: labels[name],
      promptChars: chars[name],
    })),
    systems: list(get('COMPARE_SYSTEMS'), SYSTEMS, 'COMPARE_SYSTEMS'),
    latencyMs: positive(get('COMPARE_LATENCY_MS'), 'COMPARE_LATENCY_MS'),
    tierModel,
    rpm: env.COMPARE_RPM ? positive(env.COMPARE_RPM, 'COMPARE_RPM') : tier.rpm,
    tpm: env.COMPARE_TPM ? positive(env.COMPARE_TPM, 'COMPARE_TPM') : tier.tpm,
    cap: {
      maxS: positive(get('COMPARE_CAP_S'), 'COMPARE_CAP_S'),
      minS: positive(get('COMPARE_CAP_MIN_S'), 'COMPARE_CAP_MIN_S'),
      factor: positive(get('COMPARE_CAP_FACTOR'), 'COMPARE_CAP_FACTOR'),
    },
    batch:
      batchN > 0
        ? {
            n: Math.floor(batchN),
            pendingMs: positive(get('COMPARE_BATCH_PENDING_MS'), 'COMPARE_BATCH_PENDING_MS'),
            runningMs: positive(get('COMPARE_BATCH_RUNNING_MS'), 'COMPARE_BATCH_RUNNING_MS'),
          }
        : null,
    warmUp: Math.floor(Number(get('COMPARE_WARMUP'))),
    ramp: list(get('COMPARE_RAMP'), ['on', 'off'] as const, 'COMPARE_RAMP')[0] === 'on',
    workerConcurrency: Math.floor(positive(get('COMPARE_WORKER_CONCURRENCY'), 'COMPARE_WORKER_CONCURRENCY')),
    isDefault: isDefault && env.COMPARE_RPM === undefined && env.COMPARE_TPM === undefined,
  };
}

/** The model of one run: each run has its own, so no run's quota window holds another's requests. */
export function modelOf(regime: RegimeName, n: number, system: SystemName): string {
  return `cmp-${regime}-${n}-${system}`;
}

export const WARM_UP_MODEL = 'cmp-warm-up';

export function batchModelOf(regime: RegimeName): string {
  return `cmp-${regime}-batch`;
}

/**
 * The quotas file of the comparison: every model the runs use, each with the tier's limits and
 * prices, and the tier's queue policy and headroom. The warm-up model has ten times the limits.
 */
export function comparisonQuotas(settings: CompareSettings): unknown {
  const bundled = readQuotas();
  const tier = bundled.models[settings.tierModel]!;
  const limits = { rpm: settings.rpm, tpm: settings.tpm, rpd: null, batch: true, price: tier.price };
  const models: Record<string, unknown> = {
    [WARM_UP_MODEL]: { ...limits, rpm: settings.rpm * 10, tpm: settings.tpm * 10 },
  };
  for (const regime of settings.regimes) {
    for (const n of settings.ns) {
      for (const system of settings.systems) models[modelOf(regime.name, n, system)] = limits;
    }
    if (settings.batch) models[batchModelOf(regime.name)] = limits;
  }
  const quotas = generatedQuotas(
    bundled,
    `Generated by test/bench/compare.ts: the limits and prices of ${settings.tierModel}, one model per run.`,
    `compare (${bundled.tier} ${settings.tierModel})`,
    WARM_UP_MODEL,
    models,
  );
  return settings.ramp ? { ...(quotas as object), queueRamp: STRICT_QUEUE_RAMP } : quotas;
}

/**
 * A quotas file a benchmark generates: its own models (its warm-up model the default), with the
 * bundled file's batch discount and threshold, headroom and queue policy.
 */
export function generatedQuotas(
  bundled: ReturnType<typeof readQuotas>,
  comment: string,
  tier: string,
  defaultModel: string,
  models: Record<string, unknown>,
): unknown {
  return {
    $comment: comment,
    tier,
    defaultModel,
    batchDiscount: bundled.batchDiscount,
    batchMinItems: bundled.batchMinItems,
    headroom: bundled.headroom,
    queue: bundled.queue,
    models,
  };
}

/** The limit the quota sets on N prompts: max(N·60/RPM + latency, Σtokens·60/TPM), in seconds. */
export function limitSeconds(
  settings: Pick<CompareSettings, 'rpm' | 'tpm' | 'latencyMs'>,
  n: number,
  totalTokens: number,
): { limitS: number; bound: 'rpm' | 'tpm' } {
  const byRpm = (n * 60) / settings.rpm + settings.latencyMs / 1000;
  const byTpm = (totalTokens * 60) / settings.tpm;
  return byTpm > byRpm ? { limitS: byTpm, bound: 'tpm' } : { limitS: byRpm, bound: 'rpm' };
}

/** The wall-time cap of a run whose limit is `limitS`. */
export function capSeconds(settings: Pick<CompareSettings, 'cap'>, limitS: number): number {
  const { maxS, minS, factor } = settings.cap;
  return Math.min(maxS, Math.max(minS, factor * limitS));
}
