import { describe, expect, it } from 'vitest';
import { dueWindowMs, retryBackoffMs, retryBudgetMs } from '../../../functions/core/due.js';

const queue = { maxAttempts: 8, minBackoffSeconds: 10, maxBackoffSeconds: 300, maxDoublings: 3 };

describe('due window of an item task', () => {
  it('backs off as RetryConfig documents: doubling, then linear, capped', () => {
    const waits = Array.from({ length: 8 }, (_, i) => retryBackoffMs(queue, i) / 1000);

    expect(waits).toEqual([10, 20, 40, 80, 160, 240, 300, 300]);
  });

  it('sums the backoffs of every retry, and adds the dispatch deadline', () => {
    expect(retryBudgetMs(queue)).toBe((10 + 20 + 40 + 80 + 160 + 240 + 300) * 1000);
    expect(retryBudgetMs({ ...queue, maxAttempts: 1 })).toBe(0);
    expect(dueWindowMs(queue, 330)).toBe(330_000 + retryBudgetMs(queue));
  });
});
