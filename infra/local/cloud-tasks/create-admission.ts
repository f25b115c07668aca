import type { CreateRamp } from './profile.js';

/** Width of one slot of the sliding one-second window. */
const SLOT_MS = 100;
const WINDOW_MS = 1000;
const SLOTS = WINDOW_MS / SLOT_MS;

/** What {@link CreateAdmission.admit} decided. */
export type Admission = { ok: true } | { ok: false; limit: number; retryInMs: number };

/**
 * The 500/50/5 guidance for one queue's CreateTask calls (see {@link CreateRamp}): a sliding
 * one-second window of admitted calls, in ten fixed slots so memory stays constant, and a limit
 * that starts at `initialPerSecond`, grows by `growth` per `stepMs` only as far as traffic used it,
 * and falls back to the start after `coldAfterMs` without a call. Pure: time comes in as arguments.
 */
export class CreateAdmission {
  /** Admitted calls per slot; `slotStart[i]` says which 100 ms slot `counts[i]` belongs to. */
  private readonly counts = new Array<number>(SLOTS).fill(0);
  private readonly slotStart = new Array<number>(SLOTS).fill(Number.NEGATIVE_INFINITY);
  private limit: number | undefined;
  private stepStartMs = 0;
  private stepPeak = 0;
  private lastCallMs: number | undefined;
  /** Calls refused or held past the limit. */
  rejected = 0;
  delayed = 0;

  constructor(private readonly settings: () => CreateRamp | false) {}

  /** Admits one call now, or says how long until the window may have room. */
  admit(nowMs: number): Admission {
    const ramp = this.settings();
    if (ramp === false) return { ok: true };
    const limit = this.roll(ramp, nowMs);
    const inWindow = this.inWindow(nowMs);
    if (inWindow >= Math.floor(limit)) {
      return { ok: false, limit, retryInMs: this.msUntilSlotFrees(nowMs) };
    }
    const slot = Math.floor(nowMs / SLOT_MS);
    const i = slot % SLOTS;
    if (this.slotStart[i] !== slot) {
      this.slotStart[i] = slot;
      this.counts[i] = 0;
    }
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.stepPeak = Math.max(this.stepPeak, inWindow + 1);
    this.lastCallMs = nowMs;
    return { ok: true };
  }

  /** The calls per second admitted now (undefined when the behaviour is off). */
  currentLimit(nowMs: number): number | undefined {
    const ramp = this.settings();
    return ramp === false ? undefined : this.roll(ramp, nowMs);
  }

  /** Brings the limit up to date: cold again after a quiet spell, one growth decision per step. */
  private roll(ramp: CreateRamp, nowMs: number): number {
    if (
      this.limit === undefined ||
      (this.lastCallMs !== undefined && nowMs - this.lastCallMs >= ramp.coldAfterMs)
    ) {
      this.limit = ramp.initialPerSecond;
      this.stepStartMs = nowMs;
      this.stepPeak = 0;
      this.lastCallMs = undefined;
      return this.limit;
    }
    const steps = Math.floor((nowMs - this.stepStartMs) / ramp.stepMs);
    for (let s = 0; s < steps; s++) {
      // Growth follows traffic: at most `growth` times the old limit, and only as far as the
      // busiest second of the step reached (an unused limit shrinks back towards the start).
      this.limit = Math.max(
        ramp.initialPerSecond,
        Math.min(this.limit * ramp.growth, this.stepPeak * ramp.growth),
      );
      this.stepPeak = 0;
      if (this.limit === ramp.initialPerSecond) break;
    }
    if (steps > 0) this.stepStartMs += steps * ramp.stepMs;
    return this.limit;
  }

  private inWindow(nowMs: number): number {
    const oldest = Math.floor(nowMs / SLOT_MS) - SLOTS + 1;
    let sum = 0;
    for (let i = 0; i < SLOTS; i++)
      if ((this.slotStart[i] ?? Number.NEGATIVE_INFINITY) >= oldest) sum += this.counts[i] ?? 0;
    return sum;
  }

  /** Time until the oldest slot that holds calls leaves the window. */
  private msUntilSlotFrees(nowMs: number): number {
    const oldest = Math.floor(nowMs / SLOT_MS) - SLOTS + 1;
    let first = Number.POSITIVE_INFINITY;
    for (let i = 0; i < SLOTS; i++) {
      const start = this.slotStart[i] ?? Number.NEGATIVE_INFINITY;
      if (start >= oldest && (this.counts[i] ?? 0) > 0) first = Math.min(first, start);
    }
    if (!Number.isFinite(first)) return SLOT_MS;
    return Math.max(1, (first + SLOTS) * SLOT_MS - nowMs);
  }
}
