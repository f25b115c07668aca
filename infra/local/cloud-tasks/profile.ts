/**
 * How kind the emulator is. `ideal` is a Cloud Tasks that does exactly what the queue's settings
 * say; `strict` adds the behaviours the real service documents and that a product must survive:
 * a burst the service picks, ramp-up of cold queues, system throttling on 429/503, no ordering,
 * the 30-day schedule horizon, the default Content-Type and the tombstone of a deleted queue's name.
 * Each behaviour is one field of {@link Behaviours}; a profile is a complete set of them and any
 * field can be overridden on its own. Pure data and validation, no I/O.
 */

/** The two presets. */
export type CloudTasksProfile = 'ideal' | 'strict';

/**
 * How a queue's maxBurstSize is decided.
 * - `'client'`: a value the client sends is honoured; without one, ⌈rate / 5⌉ (the `ideal` profile).
 * - `'documented'`: the client's value is ignored (the field is output only upstream) and the
 *   burst is derived from maxDispatchesPerSecond by the only rule Google documents (for App
 *   Engine queues): 10 when the rate is 1, else ⌈rate / 5⌉; at least 1, at most 500. A default
 *   queue (500/s) then reports 100, as upstream does.
 * - `'rate'`: ignored too; one second's rate, rounded up (1…500).
 * - a number, or a function of maxDispatchesPerSecond: ignored too; that many (at least 1), so a
 *   test can give a queue a much larger burst than the product plans with.
 */
export type BurstRule =
  | 'client'
  | 'documented'
  | 'rate'
  | number
  | ((maxDispatchesPerSecond: number) => number);

/**
 * Ramp-up of dispatch: a queue that is new, has not dispatched for `idleAfterMs`, or was just
 * resumed starts at `startShare` of its rate (and of its burst), rising linearly to the full rate
 * over `durationMs`.
 */
export interface DispatchRamp {
  startShare: number;
  durationMs: number;
  idleAfterMs: number;
}

/**
 * The 500/50/5 guidance on task creation: a cold queue admits `initialPerSecond` CreateTask calls
 * in any one-second window; at the end of every `stepMs` the limit becomes `growth` × what the
 * busiest second of that step used (never below the initial limit, never more than `growth` × the
 * old limit). After `coldAfterMs` without a CreateTask the queue is cold again. Past the limit a
 * call answers RESOURCE_EXHAUSTED (`'reject'`) or is held until the window has room (`'delay'`,
 * RESOURCE_EXHAUSTED after `maxDelayMs`).
 */
export interface CreateRamp {
  initialPerSecond: number;
  growth: number;
  stepMs: number;
  coldAfterMs: number;
  onExceed: 'reject' | 'delay';
  maxDelayMs: number;
}

/**
 * System throttling: a 429 or 503 from the target multiplies the queue's enforced rate by `drop`
 * (not below `minShare` of the configured rate; signals within `coalesceMs` of the last drop count
 * once), and the rate recovers linearly to the full rate over `recoverMs`.
 */
export interface SystemThrottle {
  drop: number;
  minShare: number;
  recoverMs: number;
  coalesceMs: number;
}

/** Every behaviour that differs between the profiles. */
export interface Behaviours {
  burst: BurstRule;
  dispatchRamp: DispatchRamp | false;
  createRamp: CreateRamp | false;
  throttle: SystemThrottle | false;
  /**
   * Retry-After is considered, not obeyed to the millisecond: the wait is Retry-After × a factor
   * drawn from [1 − j, 1 + j]. 0 obeys it exactly (at least that long).
   */
  retryAfterJitter: number;
  /**
   * Each time a task becomes due it is eligible up to this many ms later (uniform), so tasks due
   * in the same window go out in no particular order. 0 keeps schedule-time order.
   */
  dispatchJitterMs: number;
  /** CreateTask refuses a scheduleTime further ahead than this (INVALID_ARGUMENT). */
  maxScheduleAheadMs: number;
  /** Content-Type sent with a task that has a body and sets none; false sends none. */
  defaultContentType: string | false;
  /** How long a deleted queue's name cannot be used again (FAILED_PRECONDITION); 0 at once. */
  queueTombstoneMs: number;
}

/** Overrides of single behaviours: nested objects merge into the value they replace. */
export interface BehaviourOverrides {
  burst?: BurstRule;
  dispatchRamp?: Partial<DispatchRamp> | false;
  createRamp?: Partial<CreateRamp> | false;
  throttle?: Partial<SystemThrottle> | false;
  retryAfterJitter?: number;
  dispatchJitterMs?: number;
  maxScheduleAheadMs?: number;
  defaultContentType?: string | false;
  queueTombstoneMs?: number;
}

const DAY_MS = 24 * 60 * 60_000;

/** The realistic settings of each strict behaviour (used whenever one is turned on). */
export const STRICT_DISPATCH_RAMP: DispatchRamp = {
  startShare: 0.2,
  durationMs: 30_000,
  idleAfterMs: 60_000,
};
/**
 * {@link STRICT_DISPATCH_RAMP} as the planner's setting (`queueRamp` in a quotas file, in seconds):
 * how functions that run on the strict local cloud plan for its queues' ramp.
 */
export const STRICT_QUEUE_RAMP = {
  startShare: STRICT_DISPATCH_RAMP.startShare,
  seconds: STRICT_DISPATCH_RAMP.durationMs / 1000,
  idleSeconds: STRICT_DISPATCH_RAMP.idleAfterMs / 1000,
};

export const STRICT_CREATE_RAMP: CreateRamp = {
  initialPerSecond: 500,
  growth: 1.5,
  stepMs: 5 * 60_000,
  coldAfterMs: 5 * 60_000,
  onExceed: 'reject',
  maxDelayMs: 10_000,
};
export const STRICT_THROTTLE: SystemThrottle = {
  drop: 0.5,
  minShare: 0.05,
  recoverMs: 30_000,
  coalesceMs: 1000,
};

/** Today's emulator: what the queue's settings say, nothing more. */
export const IDEAL_BEHAVIOURS: Behaviours = {
  burst: 'client',
  dispatchRamp: false,
  createRamp: false,
  throttle: false,
  retryAfterJitter: 0,
  dispatchJitterMs: 0,
  maxScheduleAheadMs: Number.POSITIVE_INFINITY,
  defaultContentType: false,
  queueTombstoneMs: 0,
};

/** Every documented unkindness on. */
export const STRICT_BEHAVIOURS: Behaviours = {
  burst: 'documented',
  dispatchRamp: STRICT_DISPATCH_RAMP,
  createRamp: STRICT_CREATE_RAMP,
  throttle: STRICT_THROTTLE,
  retryAfterJitter: 0.2,
  dispatchJitterMs: 500,
  // Upstream: "Schedule time must be no more than 720h in the future."
  maxScheduleAheadMs: 30 * DAY_MS,
  defaultContentType: 'application/octet-stream',
  // DeleteQueue's reference: a tombstone window "of up to 3 days" (older pages said 7).
  queueTombstoneMs: 3 * DAY_MS,
};

/** The preset of a profile. */
export function profileBehaviours(profile: CloudTasksProfile): Behaviours {
  if (profile === 'ideal') return IDEAL_BEHAVIOURS;
  if (profile === 'strict') return STRICT_BEHAVIOURS;
  throw new Error(`profile must be 'ideal' or 'strict', got ${JSON.stringify(profile)}`);
}

function merge<T extends object>(
  current: T | false,
  strict: T,
  override: Partial<T> | false | undefined,
): T | false {
  if (override === undefined) return current;
  if (override === false) return false;
  // Turning a behaviour on in `ideal` starts from its strict settings.
  return { ...(current === false ? strict : current), ...override };
}

/** `base` with `overrides` applied, validated. */
export function applyOverrides(base: Behaviours, overrides: BehaviourOverrides): Behaviours {
  const next: Behaviours = {
    ...base,
    ...(overrides.burst !== undefined ? { burst: overrides.burst } : {}),
    dispatchRamp: merge(base.dispatchRamp, STRICT_DISPATCH_RAMP, overrides.dispatchRamp),
    createRamp: merge(base.createRamp, STRICT_CREATE_RAMP, overrides.createRamp),
    throttle: merge(base.throttle, STRICT_THROTTLE, overrides.throttle),
    ...(overrides.retryAfterJitter !== undefined ? { retryAfterJitter: overrides.retryAfterJitter } : {}),
    ...(overrides.dispatchJitterMs !== undefined ? { dispatchJitterMs: overrides.dispatchJitterMs } : {}),
    ...(overrides.maxScheduleAheadMs !== undefined
      ? { maxScheduleAheadMs: overrides.maxScheduleAheadMs }
      : {}),
    ...(overrides.defaultContentType !== undefined
      ? { defaultContentType: overrides.defaultContentType }
      : {}),
    ...(overrides.queueTombstoneMs !== undefined ? { queueTombstoneMs: overrides.queueTombstoneMs } : {}),
  };
  validateBehaviours(next);
  return next;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

/** Throws a readable error for a knob out of range. */
export function validateBehaviours(b: Behaviours): void {
  const { burst } = b;
  check(
    burst === 'client' ||
      burst === 'documented' ||
      burst === 'rate' ||
      typeof burst === 'function' ||
      (typeof burst === 'number' && burst >= 1),
    `burst must be 'client', 'documented', 'rate', a number >= 1 or a function, got ${String(burst)}`,
  );
  if (b.dispatchRamp) {
    const r = b.dispatchRamp;
    check(r.startShare > 0 && r.startShare <= 1, 'dispatchRamp.startShare must be in (0, 1]');
    check(r.durationMs >= 0, 'dispatchRamp.durationMs must be >= 0');
    check(r.idleAfterMs >= 0, 'dispatchRamp.idleAfterMs must be >= 0');
  }
  if (b.createRamp) {
    const c = b.createRamp;
    check(c.initialPerSecond >= 1, 'createRamp.initialPerSecond must be >= 1');
    check(c.growth >= 1, 'createRamp.growth must be >= 1');
    check(c.stepMs > 0, 'createRamp.stepMs must be > 0');
    check(c.coldAfterMs > 0, 'createRamp.coldAfterMs must be > 0');
    check(
      c.onExceed === 'reject' || c.onExceed === 'delay',
      "createRamp.onExceed must be 'reject' or 'delay'",
    );
    check(c.maxDelayMs >= 0, 'createRamp.maxDelayMs must be >= 0');
  }
  if (b.throttle) {
    const t = b.throttle;
    check(t.drop > 0 && t.drop <= 1, 'throttle.drop must be in (0, 1]');
    check(t.minShare > 0 && t.minShare <= 1, 'throttle.minShare must be in (0, 1]');
    check(t.recoverMs >= 0, 'throttle.recoverMs must be >= 0');
    check(t.coalesceMs >= 0, 'throttle.coalesceMs must be >= 0');
  }
  check(b.retryAfterJitter >= 0 && b.retryAfterJitter < 1, 'retryAfterJitter must be in [0, 1)');
  check(b.dispatchJitterMs >= 0, 'dispatchJitterMs must be >= 0');
  check(b.maxScheduleAheadMs > 0, 'maxScheduleAheadMs must be > 0');
  check(
    b.defaultContentType === false ||
      (typeof b.defaultContentType === 'string' && b.defaultContentType !== ''),
    'defaultContentType must be a media type or false',
  );
  check(b.queueTombstoneMs >= 0, 'queueTombstoneMs must be >= 0');
}

/** Upper bound of a derived burst, as upstream's maxBurstSize. */
const MAX_DERIVED_BURST = 500;

/**
 * The burst a queue gets under `rule` for `maxDispatchesPerSecond`, or undefined for `'client'`
 * (the caller's value or ⌈rate / 5⌉ decides).
 */
export function deriveBurst(rule: BurstRule, maxDispatchesPerSecond: number): number | undefined {
  const clamp = (n: number) => Math.min(MAX_DERIVED_BURST, Math.max(1, Math.ceil(n)));
  if (rule === 'client') return undefined;
  if (rule === 'documented') return maxDispatchesPerSecond === 1 ? 10 : clamp(maxDispatchesPerSecond / 5);
  if (rule === 'rate') return clamp(maxDispatchesPerSecond);
  const value = typeof rule === 'number' ? rule : rule(maxDispatchesPerSecond);
  if (!Number.isFinite(value) || value < 1) throw new Error(`the burst rule gave ${value}; it must be >= 1`);
  return Math.ceil(value);
}
