import { describe, expect, it } from 'vitest';
import { decideClaim } from '../../../functions/core/claim.js';
import { counterShardsFor, isTerminalJob, itemIdForIndex } from '../../../functions/core/jobs.js';
import { pendingOf } from '../../../functions/core/totals.js';

describe('itemIdForIndex', () => {
  it('sorts as text in input order', () => {
    const indexes = [0, 1, 2, 9, 10, 11, 99, 100, 999, 1000, 49_999, 123_456_789];

    const ids = indexes.map(itemIdForIndex);

    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('is the zero-padded index', () => {
    expect(itemIdForIndex(0)).toBe('000000000');
    expect(itemIdForIndex(42)).toBe('000000042');
    expect(Number(itemIdForIndex(49_999))).toBe(49_999);
  });
});

describe('job status', () => {
  it('knows which statuses are terminal', () => {
    expect(['queued', 'running'].map((s) => isTerminalJob(s as 'queued'))).toEqual([false, false]);
    expect(['succeeded', 'failed', 'cancelled'].map((s) => isTerminalJob(s as 'succeeded'))).toEqual([
      true,
      true,
      true,
    ]);
  });

  it('counts pending as what is not finished, never below zero', () => {
    expect(pendingOf({ total: 10, succeeded: 3, failed: 2, cancelled: 1 })).toBe(4);
    expect(pendingOf({ total: 1, succeeded: 1, failed: 1, cancelled: 0 })).toBe(0);
  });
});

describe('counterShardsFor', () => {
  it('gives a job enough counter shards for about one write a second each, at most 100', () => {
    expect(counterShardsFor(60)).toBe(1);
    expect(counterShardsFor(1000)).toBe(17);
    expect(counterShardsFor(6000)).toBe(100);
    expect(counterShardsFor(1_000_000)).toBe(100);
  });
});

describe('decideClaim', () => {
  const pending = { state: 'pending' as const, lease: null };

  it('takes a pending item of a live job, and one whose lease ran out', () => {
    expect(decideClaim(pending, { status: 'running' }, 1000)).toEqual({ kind: 'take' });
    expect(decideClaim({ ...pending, lease: { id: 'x', untilMs: 999 } }, { status: 'queued' }, 1000)).toEqual(
      {
        kind: 'take',
      },
    );
  });

  it('waits for a live lease, ends the items of a cancelled job, and skips what is done or unknown', () => {
    expect(
      decideClaim({ ...pending, lease: { id: 'x', untilMs: 5000 } }, { status: 'running' }, 1000),
    ).toEqual({
      kind: 'leased',
      untilMs: 5000,
    });
    expect(decideClaim(pending, { status: 'cancelled' }, 1000)).toEqual({ kind: 'cancel' });
    expect(decideClaim({ state: 'failed', lease: null }, { status: 'cancelled' }, 1000)).toEqual({
      kind: 'done',
      state: 'failed',
    });
    expect(decideClaim(undefined, { status: 'running' }, 1000)).toEqual({ kind: 'missing' });
    expect(decideClaim(pending, undefined, 1000)).toEqual({ kind: 'missing' });
  });
});
