import { describe, expect, it } from 'vitest';
import { backoffMs, type RetryOptions, retry } from '../../../functions/core/retry.js';

/** An operation that fails with `errors` in turn, then answers 'ok'; it counts its calls. */
function failing(...errors: unknown[]) {
  const op = async (n: number) => {
    op.calls.push(n);
    if (errors.length > 0) throw errors.shift();
    return 'ok';
  };
  op.calls = [] as number[];
  return op;
}

/** Options whose sleep advances a fake clock and records each wait. */
function timed(options: Omit<RetryOptions, 'sleep' | 'now'>) {
  const waits: number[] = [];
  let nowMs = 1_000;
  const full: RetryOptions = {
    ...options,
    now: () => nowMs,
    sleep: async (ms) => {
      waits.push(ms);
      nowMs += ms;
    },
  };
  return { options: full, waits };
}

describe('backoffMs', () => {
  it('doubles from the base after each failure, up to the cap', () => {
    const backoff = { baseMs: 200, maxMs: 5_000 };

    const waits = [1, 2, 3, 4, 5, 6].map((n) => backoffMs(backoff, n));

    expect(waits).toEqual([200, 400, 800, 1_600, 3_200, 5_000]);
  });

  it('scales a wait by a factor in [1 − jitter, 1]', () => {
    const backoff = { baseMs: 1_000, jitter: 0.5 };

    expect(backoffMs(backoff, 2, 0)).toBe(2_000);
    expect(backoffMs(backoff, 2, 0.5)).toBe(1_500);
    expect(backoffMs(backoff, 2, 0.999_999)).toBeCloseTo(1_000, 2);
  });
});

describe('retry', () => {
  it('tries again after each failure, waiting as the backoff says, and answers the first success', async () => {
    const op = failing(new Error('a'), new Error('b'));
    const { options, waits } = timed({ backoff: { baseMs: 100 }, attempts: 5 });

    const answer = await retry(op, options);

    expect(answer).toBe('ok');
    expect(op.calls).toEqual([1, 2, 3]);
    expect(waits).toEqual([100, 200]);
  });

  it('throws the last error as it is once the attempts are spent', async () => {
    const last = new Error('third');
    const op = failing(new Error('first'), new Error('second'), last);
    const { options } = timed({ backoff: { baseMs: 10 }, attempts: 3 });

    await expect(retry(op, options)).rejects.toBe(last);
    expect(op.calls).toEqual([1, 2, 3]);
  });

  it('does not retry an error the caller says is final', async () => {
    const final = Object.assign(new Error('too big'), { code: 3 });
    const op = failing(new Error('blip'), final);
    const { options, waits } = timed({
      backoff: { baseMs: 10 },
      attempts: 10,
      retryable: (err) => (err as { code?: number }).code !== 3,
    });

    await expect(retry(op, options)).rejects.toBe(final);
    expect(op.calls).toEqual([1, 2]);
    expect(waits).toEqual([10]);
  });

  it('begins no wait that would end at or after the deadline', async () => {
    const op = failing(...Array.from({ length: 20 }, (_, i) => new Error(`fault ${i}`)));
    // The clock starts at 1 000; waits of 100, 200, 400 end at 1 700; the next (800) would end at 2 500.
    const { options, waits } = timed({ backoff: { baseMs: 100 }, deadlineMs: 2_500 });

    await expect(retry(op, options)).rejects.toThrow('fault 3');
    expect(waits).toEqual([100, 200, 400]);
    expect(op.calls).toEqual([1, 2, 3, 4]);
  });

  it('draws each jittered wait from the random source it is given', async () => {
    const op = failing(new Error('a'), new Error('b'));
    const draws = [0, 0.5];
    const { options, waits } = timed({
      backoff: { baseMs: 100, jitter: 0.5 },
      attempts: 3,
      random: () => draws.shift()!,
    });

    await retry(op, options);

    expect(waits).toEqual([100, 150]);
  });

  it('reports each retry before its wait, and ends with a rejected wait (an abort)', async () => {
    const aborted = new Error('stopped');
    const seen: Array<[string, number, number]> = [];

    const run = retry(failing(new Error('a')), {
      backoff: { baseMs: 50 },
      attempts: 3,
      sleep: () => Promise.reject(aborted),
      onRetry: (err, attempt, waitMs) => seen.push([(err as Error).message, attempt, waitMs]),
    });

    await expect(run).rejects.toBe(aborted);
    expect(seen).toEqual([['a', 1, 50]]);
  });
});
