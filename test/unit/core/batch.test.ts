import { describe, expect, it } from 'vitest';
import {
  batchThreshold,
  isBatchable,
  MAX_SKIPPED_LINES,
  PartPlanner,
  routeJob,
} from '../../../functions/core/batch.js';
import { batchLineError, isTransientLineError } from '../../../functions/core/batch-errors.js';
import { decideRun, reroutePlanMs } from '../../../functions/core/batch-run.js';
import { itemIdForIndex, type NewItem } from '../../../functions/core/jobs.js';
import { PLAN_AHEAD_MS } from '../../../functions/core/rate.js';
import { testQuotas } from '../../helpers/test-quotas.js';

describe('routeJob', () => {
  const quotas = testQuotas();

  it('sends auto jobs to the Batch API from the threshold on, and realtime below it', () => {
    expect(batchThreshold('gemini-2.5-flash', quotas)).toBe(1000);
    expect(routeJob('auto', 999, 'gemini-2.5-flash', quotas)).toEqual({ mode: 'realtime' });
    expect(routeJob('auto', 1000, 'gemini-2.5-flash', quotas)).toEqual({ mode: 'batch' });
  });

  it('takes a per-model threshold over the top-level one', () => {
    const q = testQuotas();
    q.models['gemini-2.5-pro']!.batchMinItems = 10;
    expect(routeJob('auto', 10, 'gemini-2.5-pro', q)).toEqual({ mode: 'batch' });
    expect(routeJob('auto', 10, 'gemini-2.5-flash', q)).toEqual({ mode: 'realtime' });
  });

  it('keeps a model without batch on the realtime path, and refuses mode batch for it', () => {
    const q = testQuotas();
    q.models['gemini-2.5-pro']!.batch = false;
    expect(routeJob('auto', 50_000, 'gemini-2.5-pro', q)).toEqual({ mode: 'realtime' });
    expect(routeJob('batch', 5, 'gemini-2.5-pro', q)).toEqual({ problem: expect.stringMatching(/batch/) });
    expect(routeJob('batch', 5, 'constructor', q)).toEqual({ problem: expect.any(String) });
  });

  it('keeps items with media out of batches', () => {
    expect(isBatchable({})).toBe(true);
    expect(isBatchable({ media: [] })).toBe(true);
    expect(isBatchable({ media: [{ url: 'https://example.com/a.png' }] })).toBe(false);
  });
});

describe('PartPlanner', () => {
  it('closes a part before a batch line would take it over the token cap, and numbers lines by part', () => {
    const planner = new PartPlanner({ maxBytes: 1e9, maxTokens: 100 });
    const parts = [0, 1, 2, 3, 4].map((i) =>
      planner.add(i, i * 10, i * 10 + 10, { requestBytes: 10, tokens: 40 }),
    );
    expect(parts).toEqual([0, 0, 1, 1, 2]);
    expect(planner.finish()).toEqual([
      { part: 0, fromIndex: 0, toIndex: 2, fromByte: 0, toByte: 20, items: 2, tokens: 80 },
      { part: 1, fromIndex: 2, toIndex: 4, fromByte: 20, toByte: 40, items: 2, tokens: 80 },
      { part: 2, fromIndex: 4, toIndex: 5, fromByte: 40, toByte: 50, items: 1, tokens: 40 },
    ]);
  });

  it('closes a part on the byte cap too; lines outside the batch only extend the range', () => {
    const planner = new PartPlanner({ maxBytes: 100, maxTokens: 1e9 });
    planner.add(0, 0, 5);
    expect(planner.add(1, 5, 55, { requestBytes: 50, tokens: 1 })).toBe(0);
    expect(planner.add(2, 55, 105, { requestBytes: 50, tokens: 1 })).toBe(1);
    planner.add(3, 105, 110);
    expect(planner.finish()).toMatchObject([
      { part: 0, fromIndex: 0, toIndex: 2, items: 1 },
      { part: 1, fromIndex: 2, toIndex: 4, fromByte: 55, toByte: 110, items: 1 },
    ]);
  });

  it('gives a line bigger than a whole part a part of its own rather than none', () => {
    const planner = new PartPlanner({ maxBytes: 10, maxTokens: 10 });
    expect(planner.add(0, 0, 100, { requestBytes: 100, tokens: 1000 })).toBe(0);
    expect(planner.add(1, 100, 200, { requestBytes: 100, tokens: 1000 })).toBe(1);
    expect(planner.finish()).toHaveLength(2);
  });

  /** A line as intake places it: stored failed (a bad line, a duplicate key) or going to the batch. */
  const line = (index: number, failed = false): NewItem => ({
    id: itemIdForIndex(index),
    index,
    key: `k${index}`,
    request: { contents: [] },
    estimatedTokens: 1,
    ...(failed ? { error: { code: 400, status: 'INVALID_ARGUMENT', message: 'duplicate key "k0"' } } : {}),
  });

  it('names the lines stored failed inside a part, so its upload leaves them out', () => {
    // A duplicate key parses as well as its first line: only the part can tell the upload to skip it.
    const planner = new PartPlanner({ maxBytes: 1e9, maxTokens: 1e9 });
    planner.place(line(0), 0, 10);
    planner.place(line(1, true), 10, 20);
    planner.place(line(2), 20, 30);
    expect(planner.finish()).toEqual([
      { part: 0, fromIndex: 0, toIndex: 3, fromByte: 0, toByte: 30, items: 2, tokens: 2, skip: [1] },
    ]);
  });

  it('closes a part whose list of failed lines is full, so a run record stays small', () => {
    const planner = new PartPlanner({ maxBytes: 1e9, maxTokens: 1e9 });
    planner.place(line(0), 0, 1);
    for (let i = 1; i <= MAX_SKIPPED_LINES + 1; i++) planner.place(line(i, true), i, i + 1);
    planner.place(line(MAX_SKIPPED_LINES + 2), MAX_SKIPPED_LINES + 2, MAX_SKIPPED_LINES + 3);
    const parts = planner.finish();
    expect(parts).toHaveLength(2);
    expect(parts.every((p) => (p.skip?.length ?? 0) <= MAX_SKIPPED_LINES)).toBe(true);
    expect(parts.flatMap((p) => p.skip ?? [])).toHaveLength(MAX_SKIPPED_LINES + 1);
    expect(parts[1]).toMatchObject({ fromIndex: MAX_SKIPPED_LINES + 1, items: 1 });
  });

  it('makes no part for a set with no batch line', () => {
    const planner = new PartPlanner({ maxBytes: 10, maxTokens: 10 });
    planner.add(0, 0, 5);
    expect(planner.finish()).toEqual([]);
  });
});

describe('decideRun', () => {
  const day = 86_400_000;

  it('collects a succeeded batch and waits for a running one', () => {
    expect(decideRun('SUCCEEDED', 0, 1, day)).toEqual({ kind: 'collect' });
    expect(decideRun('RUNNING', 0, 2 * day, day)).toEqual({ kind: 'wait' });
  });

  it('falls back for failed, expired and foreign-cancelled batches, with the reason', () => {
    expect(decideRun('FAILED', 0, 1, day, { message: 'boom' })).toEqual({
      kind: 'fall-back',
      reason: 'the batch failed: boom',
      cancelUpstream: false,
    });
    expect(decideRun('EXPIRED', 0, 1, day)).toMatchObject({
      kind: 'fall-back',
      reason: expect.stringMatching(/expired/),
    });
    expect(decideRun('CANCELLED', 0, 1, day)).toMatchObject({ kind: 'fall-back' });
  });

  it('cancels a batch still pending past the deadline, and only then', () => {
    expect(decideRun('PENDING', 1000, 1000 + day, day)).toEqual({ kind: 'wait' });
    expect(decideRun('PENDING', 1000, 1001 + day, day)).toMatchObject({
      kind: 'fall-back',
      cancelUpstream: true,
    });
  });
});

describe('reroutePlanMs', () => {
  it("gives a part sent back the time its model's rate needs to plan it, plus the plan's horizon", () => {
    expect(reroutePlanMs(0, 1000)).toBe(PLAN_AHEAD_MS);
    expect(reroutePlanMs(6000, 1000)).toBe(6 * 60_000 + PLAN_AHEAD_MS);
  });
});

describe('decideRun after our own cancel', () => {
  const day = 86_400_000;

  it('cancels again while the batch has not ended, then falls back with our reason, or collects', () => {
    const reason = 'the batch was still pending after 60 s';
    expect(decideRun('RUNNING', 0, 1, day, undefined, reason)).toEqual({
      kind: 'fall-back',
      reason,
      cancelUpstream: true,
    });
    expect(decideRun('CANCELLED', 0, 1, day, undefined, reason)).toEqual({
      kind: 'fall-back',
      reason,
      cancelUpstream: false,
    });
    expect(decideRun('SUCCEEDED', 0, 1, day, undefined, reason)).toEqual({ kind: 'collect' });
  });
});

describe('batchLineError', () => {
  it('maps a google.rpc.Status (gRPC code, no status name) to an HTTP code and status', () => {
    expect(batchLineError({ code: 13, message: 'Internal error' })).toEqual({
      code: 500,
      status: 'INTERNAL',
      message: 'Internal error',
    });
    expect(batchLineError({ code: 8, message: 'x' })).toMatchObject({
      code: 429,
      status: 'RESOURCE_EXHAUSTED',
    });
  });

  it('keeps an HTTP code and status as they are, and survives a missing error', () => {
    expect(batchLineError({ code: 400, status: 'INVALID_ARGUMENT', message: 'bad' })).toEqual({
      code: 400,
      status: 'INVALID_ARGUMENT',
      message: 'bad',
    });
    expect(batchLineError(undefined)).toMatchObject({ code: 500, status: 'INTERNAL' });
  });
});

describe('isTransientLineError', () => {
  it.each([
    [{ code: 8 }, true],
    [{ code: 13 }, true],
    [{ code: 14 }, true],
    [{ code: 429 }, true],
    [{ code: 503 }, true],
    [{ code: 3 }, false],
    [{ code: 400 }, false],
    [{ code: 404 }, false],
    [{ code: 4 }, false],
  ])('reads the line error %j as transient: %s', (raw, transient) => {
    expect(isTransientLineError(batchLineError(raw))).toBe(transient);
  });
});
