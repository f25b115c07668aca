/** A queue's retry settings, in milliseconds; the gRPC layer converts from RetryConfig. */
export interface RetryPolicy {
  /** Attempts per task including the first; -1 means unlimited. */
  maxAttempts: number;
  /** Limit on retrying measured from the first attempt; 0 means unlimited. */
  maxRetryDurationMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  maxDoublings: number;
}

/** The real service's defaults for a queue created without a RetryConfig. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 100,
  maxRetryDurationMs: 0,
  minBackoffMs: 100,
  maxBackoffMs: 3_600_000,
  maxDoublings: 16,
};

/**
 * The wait before retry number `retryIndex` (0 for the first retry), as RetryConfig documents:
 * start at minBackoff, double `maxDoublings` times, then grow linearly by minBackoff·2^maxDoublings,
 * never above maxBackoff. With 10 s / 300 s / 3 doublings: 10, 20, 40, 80, 160, 240, 300, 300, …
 */
export function retryDelayMs(policy: RetryPolicy, retryIndex: number): number {
  const { minBackoffMs, maxBackoffMs } = policy;
  const doublings = Math.max(0, policy.maxDoublings);
  const delay =
    retryIndex <= doublings
      ? minBackoffMs * 2 ** retryIndex
      : minBackoffMs * 2 ** doublings * (1 + retryIndex - doublings);
  return Math.min(delay, maxBackoffMs);
}

/**
 * Whether a task that just failed its `attempts`-th attempt is out of retries. RetryConfig says
 * the task is deleted once maxRetryDuration has passed *and* it has been attempted maxAttempts
 * times; a limit that is unlimited (-1 / 0) does not hold the task back, and with both unlimited
 * it is retried forever.
 */
export function retriesExhausted(
  policy: RetryPolicy,
  attempts: number,
  sinceFirstAttemptMs: number,
): boolean {
  const attemptsLimited = policy.maxAttempts !== -1;
  const durationLimited = policy.maxRetryDurationMs > 0;
  if (!attemptsLimited && !durationLimited) return false;
  const attemptsReached = !attemptsLimited || attempts >= policy.maxAttempts;
  const durationReached = !durationLimited || sinceFirstAttemptMs >= policy.maxRetryDurationMs;
  return attemptsReached && durationReached;
}

/**
 * Parses a `Retry-After` header (delay in seconds, or an HTTP date) into milliseconds from `nowMs`.
 * Returns undefined when absent or unreadable, so the regular backoff applies.
 */
export function parseRetryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}
