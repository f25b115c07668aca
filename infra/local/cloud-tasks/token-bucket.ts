/**
 * The queue's token bucket: holds up to `capacity` tokens, refilled continuously at `ratePerSecond`;
 * each dispatch takes one. Fractional tokens carry over, so a late timer does not lose rate while
 * the bucket is below capacity.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private ratePerSecond: number,
    private capacity: number,
    nowMs: number,
  ) {
    this.tokens = capacity;
    this.updatedAt = nowMs;
  }

  /** Changes rate and capacity (UpdateQueue); tokens above the new capacity are dropped. */
  reconfigure(ratePerSecond: number, capacity: number, nowMs: number): void {
    this.refill(nowMs);
    this.ratePerSecond = ratePerSecond;
    this.capacity = capacity;
    this.tokens = Math.min(this.tokens, capacity);
  }

  /** Takes a token if one is available now. */
  tryTake(nowMs: number): boolean {
    this.refill(nowMs);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a whole token is available; Infinity when the rate is zero. */
  msUntilToken(nowMs: number): number {
    this.refill(nowMs);
    if (this.tokens >= 1) return 0;
    if (this.ratePerSecond <= 0) return Number.POSITIVE_INFINITY;
    return ((1 - this.tokens) * 1000) / this.ratePerSecond;
  }

  private refill(nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.updatedAt);
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.ratePerSecond) / 1000);
    this.updatedAt = nowMs;
  }
}
