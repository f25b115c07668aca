/**
 * The one retry loop: an operation tried again after exponentially growing waits, bounded by a
 * number of attempts, a deadline, or both, and only for errors the caller says are worth it. Every
 * caller of the product that retries in place (an outcome write, a task creation, a callback, an
 * upload chunk) goes through here; each keeps its own bounds and its own test of them.
 *
 * Pure: the wait, the clock and the random source are the caller's, so the seeded simulation and
 * the unit tests run it in their own time; nothing here reads a timer, `Date.now` or `Math.random`
 * unless the caller passes them.
 */

/** How long to wait after each failure. */
export interface Backoff {
  /** The wait after the first failed attempt; it doubles with each further one. */
  baseMs: number;
  /** The longest wait; none by default. */
  maxMs?: number;
  /**
   * The share of each wait drawn at random: the wait is scaled by a factor in [1 − jitter, 1], so
   * that callers who failed together do not all come back together. 0 (the default): no jitter.
   */
  jitter?: number;
}

/** The wait after the `failures`-th failed attempt (from 1), given `random` in [0, 1). */
export function backoffMs(backoff: Backoff, failures: number, random = 0): number {
  const grown = Math.min(backoff.maxMs ?? Number.POSITIVE_INFINITY, backoff.baseMs * 2 ** (failures - 1));
  return grown * (1 - (backoff.jitter ?? 0) * random);
}

export interface RetryOptions {
  /** How long to wait between attempts. */
  backoff: Backoff;
  /** Attempts in all, the first included; unbounded by default (then give a `deadlineMs`). */
  attempts?: number;
  /** No wait is begun that would end at or after this time (by `now`); none by default. */
  deadlineMs?: number;
  /** Whether an error is worth another attempt; every error by default. */
  retryable?: (err: unknown) => boolean;
  /** Waits `ms` (rejecting ends the loop with that rejection: an abort, say). */
  sleep: (ms: number) => Promise<void>;
  /** The clock `deadlineMs` is read against; required with a deadline. */
  now?: () => number;
  /** In [0, 1), for the jitter; required with a jitter. */
  random?: () => number;
  /** Called before each wait: for a log line, or to keep the error as the cause of a later one. */
  onRetry?: (err: unknown, attempt: number, waitMs: number) => void;
}

/**
 * Runs `attempt(n)` (n from 1) until it resolves, and resolves with its value. An error that is not
 * retryable, or that ends the last attempt, or whose wait would reach the deadline, is thrown as it
 * is: the caller words the final failure.
 */
export async function retry<T>(attempt: (n: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const attempts = options.attempts ?? Number.POSITIVE_INFINITY;
  if (options.deadlineMs !== undefined && !options.now) throw new Error('retry: a deadline needs a clock');
  if (options.backoff.jitter && !options.random) throw new Error('retry: a jitter needs a random source');
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      const waitMs = backoffMs(options.backoff, n, options.random?.() ?? 0);
      const late = options.deadlineMs !== undefined && options.now!() + waitMs >= options.deadlineMs;
      if (n >= attempts || late || (options.retryable && !options.retryable(err))) throw err;
      options.onRetry?.(err, n, waitMs);
      await options.sleep(waitMs);
    }
  }
}
