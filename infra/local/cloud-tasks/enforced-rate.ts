import type { DispatchRamp, SystemThrottle } from './profile.js';

/**
 * The share (0…1] of a queue's configured rate and burst that the service enforces at a moment:
 * the product of a ramp-up share (after the queue was new, idle or paused) and a throttle share
 * (after 429/503 answers). Both rise linearly back to 1; the queue asks for the share before every
 * dispatch and scales its token bucket by it. Settings are read on every call, so changing them at
 * run time takes effect at once. Pure: time comes in as arguments.
 */
export class EnforcedRate {
  private rampStartMs: number | undefined;
  private lastDispatchMs: number | undefined;
  private throttleShareAtDrop = 1;
  private throttleDropMs: number | undefined;
  /** Ramps started (new, idle or resumed queue). */
  ramps = 0;
  /** 429/503 signals that lowered the rate (coalesced ones not counted). */
  throttleDrops = 0;

  constructor(
    private readonly ramp: () => DispatchRamp | false,
    private readonly throttle: () => SystemThrottle | false,
  ) {}

  /** The queue is about to dispatch: a queue that never did, or not for `idleAfterMs`, ramps up. */
  beforeDispatch(nowMs: number): void {
    const ramp = this.ramp();
    if (ramp === false) return;
    if (this.lastDispatchMs === undefined || nowMs - this.lastDispatchMs >= ramp.idleAfterMs)
      this.startRamp(nowMs);
  }

  /** A dispatch went out. */
  dispatched(nowMs: number): void {
    this.lastDispatchMs = nowMs;
  }

  /** The queue was resumed: it ramps up again from its next dispatch on. */
  resumed(nowMs: number): void {
    if (this.ramp() === false) return;
    this.startRamp(nowMs);
    // The ramp has begun; the next dispatch must not restart it as if the queue were idle.
    this.lastDispatchMs = nowMs;
  }

  /** The target answered 429 or 503. */
  backoffSignal(nowMs: number): void {
    const throttle = this.throttle();
    if (throttle === false) return;
    if (this.throttleDropMs !== undefined && nowMs - this.throttleDropMs < throttle.coalesceMs) return;
    this.throttleShareAtDrop = Math.max(throttle.minShare, this.throttleShare(nowMs) * throttle.drop);
    this.throttleDropMs = nowMs;
    this.throttleDrops++;
  }

  /** The enforced share now. */
  share(nowMs: number): number {
    return this.rampShare(nowMs) * this.throttleShare(nowMs);
  }

  /** The ramp's part of the share now (1 when not ramping). */
  rampShare(nowMs: number): number {
    const ramp = this.ramp();
    if (ramp === false || this.rampStartMs === undefined) return 1;
    const elapsed = nowMs - this.rampStartMs;
    if (elapsed >= ramp.durationMs) return 1;
    return ramp.startShare + (1 - ramp.startShare) * (Math.max(0, elapsed) / ramp.durationMs);
  }

  /** The throttle's part of the share now (1 when not throttled). */
  throttleShare(nowMs: number): number {
    const throttle = this.throttle();
    if (throttle === false || this.throttleDropMs === undefined) return 1;
    const elapsed = nowMs - this.throttleDropMs;
    if (elapsed >= throttle.recoverMs) return 1;
    return (
      this.throttleShareAtDrop + (1 - this.throttleShareAtDrop) * (Math.max(0, elapsed) / throttle.recoverMs)
    );
  }

  private startRamp(nowMs: number): void {
    this.rampStartMs = nowMs;
    this.ramps++;
  }
}
