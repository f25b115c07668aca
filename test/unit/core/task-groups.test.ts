import { describe, expect, it } from 'vitest';
import {
  itemsPerTaskFor,
  MAX_DISPATCHES_PER_SECOND,
  queueRateLimits,
} from '../../../functions/core/queue-rate.js';
import { MAX_ITEMS_PER_TASK } from '../../../functions/core/quotas.js';
import { planDispatches } from '../../../functions/core/rate.js';
import { groupTasks, pageSizeFor } from '../../../functions/core/task-groups.js';
import { taskPayloadSchema } from '../../../functions/core/tasks.js';
import { itemTaskSpecs } from '../../../functions/platform/item-tasks.js';
import { TokenBucket } from '../../../infra/local/cloud-tasks/token-bucket.js';

const T0 = Date.parse('2024-07-01T19:00:00.000Z');

/** The planned send times of `n` light items at `rpm` with k items a task (`alone`: each in a task of its own). */
function planLight(n: number, rpm: number, k: number, alone = false): number[] {
  return planDispatches(
    { buckets: {} },
    Array(n).fill(10),
    T0,
    { rpm, tpm: 1e9 },
    0.98,
    undefined,
    undefined,
    false,
    undefined,
    k,
    alone,
  ).scheduleMs;
}

/** The plan of `n` light items at `rpm` with k items a task, cut into tasks as the task queue cuts them. */
function planTasks(n: number, rpm: number, k: number) {
  const scheduleMs = planLight(n, rpm, k);
  const groups = groupTasks(
    scheduleMs.map((plannedMs, i) => ({ itemId: String(i), plannedMs })),
    itemsPerTaskFor({ rpm }, 0.98, k),
  );
  return { scheduleMs, groups };
}

/**
 * When a queue of the rate and burst `queueRateLimits` gives for k sends each task,
 * dispatched in 10 ms steps through the local Cloud Tasks' token bucket: [due, sent, items].
 */
function dispatch(groups: Array<Array<{ plannedMs?: number }>>, rpm: number, k: number) {
  const { maxDispatchesPerSecond: rate, maxBurstSize: burst } = queueRateLimits({ rpm }, 0.98, k);
  let now = T0;
  const bucket = new TokenBucket(rate, burst, now);
  const sent: Array<{ due: number; at: number; items: number }> = [];
  let next = 0;
  while (next < groups.length) {
    while (next < groups.length && groups[next]![0]!.plannedMs! <= now && bucket.tryTake(now)) {
      sent.push({ due: groups[next]![0]!.plannedMs!, at: now, items: groups[next]!.length });
      next++;
    }
    now += 10;
  }
  return sent;
}

/** The most items in any 60 s window of the sends. */
function busiestMinute(sends: Array<{ at: number; items: number }>): number {
  let most = 0;
  for (const s of sends) {
    const inWindow = sends.filter((o) => o.at >= s.at && o.at < s.at + 60_000);
    most = Math.max(
      most,
      inWindow.reduce((sum, o) => sum + o.items, 0),
    );
  }
  return most;
}

describe('queueRateLimits with several items a task', () => {
  it('is today’s queue with one item a task', () => {
    for (const rpm of [10, 150, 1000, 6000, 30_000, 100_000])
      expect(queueRateLimits({ rpm }, 0.98, 1)).toEqual(queueRateLimits({ rpm }, 0.98));
  });

  it('keeps k × (burst + 60 × rate) items a minute within the budget, for every k', () => {
    for (const rpm of [10, 150, 1000, 4000, 6000, 30_000, 100_000, 1_000_000])
      for (const k of [1, 2, 3, 4, 8, 10, 25, MAX_ITEMS_PER_TASK]) {
        const { maxDispatchesPerSecond: rate, maxBurstSize: burst } = queueRateLimits({ rpm }, 0.98, k);
        const perTask = itemsPerTaskFor({ rpm }, 0.98, k);
        expect(perTask * (burst + 60 * rate), `rpm ${rpm}, k ${k}`).toBeLessThanOrEqual(
          Math.floor(rpm * 0.98),
        );
        expect(rate).toBeLessThanOrEqual(MAX_DISPATCHES_PER_SECOND);
      }
  });

  it('never puts more than one second of the budget in a task', () => {
    expect(itemsPerTaskFor({ rpm: 10 }, 0.98, 10)).toBe(1);
    expect(itemsPerTaskFor({ rpm: 150 }, 0.98, 8)).toBe(3);
    expect(itemsPerTaskFor({ rpm: 6000 }, 0.98, 8)).toBe(8);
  });

  it('lifts the 500 dispatches a second ceiling k-fold: one model past 30,000 RPM', () => {
    const single = queueRateLimits({ rpm: 120_000 }, 0.98, 1).maxDispatchesPerSecond;
    const eight = queueRateLimits({ rpm: 120_000 }, 0.98, 8).maxDispatchesPerSecond;
    expect(single).toBe(MAX_DISPATCHES_PER_SECOND);
    expect(eight * 8).toBeGreaterThan(1900);
    expect(eight).toBeLessThan(MAX_DISPATCHES_PER_SECOND);
  });
});

describe('planDispatches and groupTasks with several items a task', () => {
  it.each([
    [6000, 4],
    [6000, 10],
    [1000, 3],
    [120_000, 8],
  ])('at %i RPM and k = %i, the queue keeps up with the plan and no minute goes over', (rpm, k) => {
    const n = Math.ceil((rpm * 0.98 * 1.5) / 60) * 60 > 20_000 ? 20_000 : Math.ceil(rpm * 1.5);
    const { scheduleMs, groups } = planTasks(n, rpm, k);

    expect(scheduleMs).toHaveLength(n);
    expect(Math.max(...groups.map((g) => g.length))).toBeLessThanOrEqual(k);
    // Seconds are filled a whole task's worth at a time: few tasks carry fewer than k items.
    expect(groups.filter((g) => g.length < k).length).toBeLessThanOrEqual(2);
    const sends = dispatch(groups, rpm, k);
    // The queue sends each task within a second of its plan (the first second's burst, as with one
    // item a task), far from the replanning threshold, and does not drift behind it ...
    expect(Math.max(...sends.map((s) => s.at - s.due))).toBeLessThanOrEqual(1010);
    expect(Math.max(...sends.slice(-20).map((s) => s.at - s.due))).toBeLessThan(500);
    // ... and no rolling minute carries more items than the budget.
    expect(busiestMinute(sends)).toBeLessThanOrEqual(Math.floor(rpm * 0.98));
  });

  it("plans items in tasks of their own (replans, new tasks, repairs) at the queue's task rate", () => {
    // Arrange: 300 items each alone in its task, on a queue whose rate counts tasks of k = 4.
    const rpm = 6000;
    const k = 4;

    // Act
    const scheduleMs = planLight(300, rpm, k, true);
    const sends = dispatch(
      scheduleMs.map((plannedMs, i) => [{ itemId: String(i), plannedMs }]),
      rpm,
      k,
    );

    // Assert: the queue sends each within a second of its plan and does not drift behind it.
    expect(sends).toHaveLength(300);
    expect(Math.max(...sends.map((s) => s.at - s.due))).toBeLessThanOrEqual(1010);
    expect(Math.max(...sends.slice(-20).map((s) => s.at - s.due))).toBeLessThan(500);
  });

  it('cuts tasks at a new second and at k items, and sends an item without a plan alone', () => {
    const at = (ms: number) => ({ itemId: String(ms), plannedMs: T0 + ms });
    const groups = groupTasks([at(0), at(100), at(200), at(900), at(1000), { itemId: 'x' }, at(1100)], 3);
    expect(groups.map((g) => g.map((i) => i.itemId))).toEqual([
      ['0', '100', '200'],
      ['900'],
      ['1000', '1100'],
      ['x'],
    ]);
  });

  it('puts items planned for one instant together up to the cap, in plan time then index order', () => {
    // A ramping queue's task: three items at +0, two at +500; a cap of 2 splits the first.
    const item = (index: number, ms: number) => ({ itemId: `i${index}`, index, plannedMs: T0 + ms });
    const plan = [item(4, 0), item(2, 0), item(3, 500), item(1, 500), item(0, 0)];

    const groups = groupTasks(plan, 1, 2);
    // The same page cut again (after a crash: sorted by plan time, then index) makes the same tasks.
    const again = groupTasks([...plan].reverse(), 1, 2);

    expect(groups.map((g) => g.map((i) => i.itemId))).toEqual([['i0', 'i2'], ['i4'], ['i1', 'i3']]);
    expect(again).toEqual(groups);
    // Without a cap above k, one item a task.
    expect(groupTasks(plan, 1).every((g) => g.length === 1)).toBe(true);
  });

  it('marks a task carrying more than k items as packed, so its late items count requests', () => {
    const task = (itemId: string, plannedMs: number) => ({ itemId, index: Number(itemId), plannedMs });
    const tasks = [task('1', T0), task('2', T0), task('3', T0 + 500)];
    const name = (_: string, t: { itemId: string }) => `t-${t.itemId}`;

    const packed = itemTaskSpecs('job', tasks, { itemsPerTask: 1, cap: 5 }, name);
    const withinK = itemTaskSpecs('job', tasks, { itemsPerTask: 2, cap: 2 }, name);

    expect(packed.map((t) => t.payload)).toEqual([
      {
        kind: 'items',
        jobId: 'job',
        items: [
          { itemId: '1', plannedMs: T0 },
          { itemId: '2', plannedMs: T0 },
        ],
        packed: true,
      },
      { kind: 'item', jobId: 'job', itemId: '3', plannedMs: T0 + 500 },
    ]);
    expect(withinK[0]!.payload).not.toHaveProperty('packed');
    for (const t of packed) expect(taskPayloadSchema.parse(t.payload)).toEqual(t.payload);
  });

  it('sizes a page in whole tasks', () => {
    expect(pageSizeFor(500, 1)).toBe(500);
    expect(pageSizeFor(500, 3)).toBe(498);
    expect(pageSizeFor(500, 8)).toBe(496);
    expect(pageSizeFor(10, 50)).toBe(50);
  });
});

describe('the multi-item payload', () => {
  it('carries ids only, far below Cloud Tasks’ 100 KB, and refuses more than the most items a task', () => {
    const items = Array.from({ length: MAX_ITEMS_PER_TASK }, (_, i) => ({
      itemId: String(i).padStart(9, '0'),
      plannedMs: T0 + i,
    }));
    const payload = { kind: 'items', jobId: 'j'.repeat(64), items };
    expect(taskPayloadSchema.safeParse(payload).success).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(payload))).toBeLessThan(100_000);
    expect(
      taskPayloadSchema.safeParse({ ...payload, items: [...items, { itemId: '999999999' }] }).success,
    ).toBe(false);
    expect(taskPayloadSchema.safeParse({ ...payload, items: [] }).success).toBe(false);
  });
});
