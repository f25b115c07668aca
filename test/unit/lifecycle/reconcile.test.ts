import { describe, expect, it } from 'vitest';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { type ReconcileDeps, reconcile } from '../../../functions/lifecycle/reconcile.js';
import {
  MAX_ROUNDS,
  MAX_UNREACHED_ROUNDS,
  roundVerdict,
} from '../../../functions/lifecycle/reconcile-items.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { parkedAnswerName } from '../../../functions/platform/object-store.js';
import { itemTaskId } from '../../../functions/platform/task-queue.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

const JOB = 'job-rec';
const T0 = Date.parse('2024-07-01T19:00:00Z');
const STALL_MS = 60_000;
const idOf = (i: number) => String(i).padStart(9, '0');

async function setup(prompts = ['a', 'b', 'c']) {
  let now = T0;
  const capture = createLogCapture();
  const quotas = testQuotas();
  const world = fakeWorld({
    quotas,
    logger: createLogger({ destination: capture.stream }),
    clock: () => now,
    stallMs: STALL_MS,
  });
  const job = normalizeJobRequest({ prompts, callbackUrl: 'https://example.test/cb' }, quotas);
  await world.lifecycle.create(
    {
      id: JOB,
      model: job.model,
      mode: 'realtime',
      total: prompts.length,
      source: 'api',
      callbackUrl: 'https://example.test/cb',
    },
    job.items,
  );
  const run = (options: Pick<ReconcileDeps, 'orphanSweep' | 'limits'> = {}) =>
    reconcile({
      stores: world.db.stores,
      lifecycle: world.lifecycle,
      planner: world.planner,
      tasks: world.tasks,
      logger: createLogger({ destination: capture.stream }),
      stallMs: STALL_MS,
      now: () => now,
      ...options,
    });
  const advance = (ms: number) => {
    now += ms;
  };
  return { ...world, capture, run, advance, now: () => now };
}

describe('reconcile: items whose lease ran out', () => {
  it('gives an item a new task when its lease ran out with no outcome, and says so on the job', async () => {
    const { db, tasks, capture, run, advance, lifecycle } = await setup();
    db.jobs.get(JOB)!.status = 'running';
    db.lease(JOB, idOf(1), T0 + 1000);
    advance(5000);

    const report = await run();

    expect(report.retasked).toBe(1);
    expect(db.item(JOB, idOf(1))).toMatchObject({ lease: null, rounds: 1, state: 'pending' });
    expect(tasks.itemTasks.get(`${itemTaskId(JOB, idOf(1))}-r1`)).toMatchObject({
      itemId: idOf(1),
      round: 1,
    });
    expect((await lifecycle.view(JOB))?.reconciled.retasked).toBe(1);
    expect(capture.events('reconcile.item_retasked')).toHaveLength(1);
  });

  it('leaves a live lease alone', async () => {
    const { db, tasks, run, advance } = await setup();
    db.jobs.get(JOB)!.status = 'running';
    db.lease(JOB, idOf(1), T0 + 60_000);
    advance(5000);

    const report = await run();

    expect(report.retasked).toBe(0);
    expect(tasks.itemTasks.size).toBe(0);
  });

  it(`fails an item with the reason after ${MAX_ROUNDS} new tasks, counting it once`, async () => {
    const { db, run, advance, lifecycle } = await setup(['only']);
    await db.stores.jobs.setEnqueued(JOB, 1, T0);
    db.jobs.get(JOB)!.status = 'running';
    db.item(JOB, idOf(0))!.rounds = MAX_ROUNDS;
    db.lease(JOB, idOf(0), T0 + 1000);
    advance(STALL_MS + 5000);

    const first = await run();
    const second = await run();

    expect(first).toMatchObject({ failed: 1, finished: 1 });
    expect(second).toMatchObject({ failed: 0, finished: 0 });
    expect(db.item(JOB, idOf(0))).toMatchObject({ state: 'failed', error: { code: 500, status: 'ABORTED' } });
    expect(db.item(JOB, idOf(0))?.error?.message).toMatch(/lease ran out 4 times/);
    // Nothing is pending any more: the same run finished the job.
    expect(await lifecycle.view(JOB)).toMatchObject({
      status: 'succeeded',
      counts: { failed: 1, pending: 0 },
      reconciled: { failed: 1, finishes: 1 },
    });
  });

  it(`records the answer a delivery parked instead of failing the item after ${MAX_ROUNDS} rounds`, async () => {
    // Arrange: the last delivery paid for an answer, could not write it and parked it in the bucket.
    const { db, objects, run, advance, lifecycle } = await setup(['only']);
    await db.stores.jobs.setEnqueued(JOB, 1, T0);
    db.jobs.get(JOB)!.status = 'running';
    db.item(JOB, idOf(0))!.rounds = MAX_ROUNDS;
    db.item(JOB, idOf(0))!.attempts = 4;
    db.lease(JOB, idOf(0), T0 + 1000);
    const usage = { promptTokens: 3, outputTokens: 5 };
    await objects.putJson(parkedAnswerName(JOB, idOf(0)), {
      state: 'succeeded',
      response: { candidates: [{ content: { parts: [{ text: 'paid for' }] } }] },
      usage,
      costUsd: 0.25,
    });
    advance(STALL_MS + 5000);

    // Act
    const report = await run();

    // Assert: the paid answer, its usage and cost; the parked copy gone; nothing failed.
    expect(report).toMatchObject({ failed: 0, recovered: 1, finished: 1 });
    expect(db.item(JOB, idOf(0))).toMatchObject({ state: 'succeeded', usage, costUsd: 0.25 });
    expect(objects.objects.has(parkedAnswerName(JOB, idOf(0)))).toBe(false);
    expect(await lifecycle.view(JOB)).toMatchObject({ counts: { succeeded: 1, failed: 0 }, costUsd: 0.25 });
  });
});

describe('reconcile: jobs', () => {
  it('enqueues a job again whose enqueuing never started, once it has stalled, and only once per stall', async () => {
    const { db, tasks, capture, run, advance } = await setup();

    const early = await run();
    advance(STALL_MS + 1000);
    const late = await run();
    const again = await run();

    expect(early.reenqueued).toBe(0);
    expect(late.reenqueued).toBe(1);
    expect(again.reenqueued).toBe(0);
    expect([...tasks.controlTasks]).toEqual([
      [`${JOB}-enqueue-0-r${Math.floor((T0 + STALL_MS) / 1000)}`, { kind: 'enqueue', jobId: JOB, from: 0 }],
    ]);
    expect(db.jobs.get(JOB)?.reconciled.reenqueued).toBe(1);
    expect(capture.events('reconcile.enqueue_restarted')).toHaveLength(1);
  });

  it('does not touch a paced job before it is due', async () => {
    const { db, tasks, run, advance } = await setup();
    await db.stores.jobs.setEnqueued(JOB, 1, T0 + 10 * 60_000);
    advance(5 * 60_000);

    const report = await run();

    expect(report.reenqueued).toBe(0);
    expect(tasks.controlTasks.size).toBe(0);
  });

  it('finishes a cancel that stopped halfway: pending items end cancelled, totals frozen, callback sent', async () => {
    const { db, sent, run, advance, lifecycle } = await setup();
    db.settle(JOB, idOf(0), { state: 'succeeded', response: { ok: 1 } });
    await db.stores.jobs.cancel(JOB); // the cancel crashed right after turning the job cancelled
    const before = await lifecycle.view(JOB);

    const early = await run();
    advance(STALL_MS + 1000);
    const late = await run();
    const again = await run();

    expect(before?.counts.pending).toBe(2);
    expect(early.cancelsResumed).toBe(0);
    expect(late.cancelsResumed).toBe(1);
    expect(again.cancelsResumed).toBe(0);
    expect(await lifecycle.view(JOB)).toMatchObject({
      status: 'cancelled',
      counts: { succeeded: 1, cancelled: 2, pending: 0 },
      reconciled: { cancelsResumed: 1 },
    });
    expect(sent).toHaveLength(1);
  });

  it('finishes a live job with nothing pending (its finish watcher stopped)', async () => {
    const { db, run, advance, lifecycle, sent } = await setup(['a']);
    await db.stores.jobs.setEnqueued(JOB, 1, T0 + STALL_MS);
    db.jobs.get(JOB)!.status = 'running';
    db.settle(JOB, idOf(0), { state: 'succeeded', response: { ok: 1 } });
    advance(STALL_MS + 1000);

    const report = await run();

    expect(report.finished).toBe(1);
    expect((await lifecycle.view(JOB))?.status).toBe('succeeded');
    expect(sent).toHaveLength(1);
  });

  it('counts each action once when two ticks run at once', async () => {
    const { tasks, run, advance, lifecycle } = await setup();
    const other = await setup();
    await other.db.stores.jobs.cancel(JOB);
    advance(STALL_MS + 1000);
    other.advance(STALL_MS + 1000);

    const [a, b] = await Promise.all([run(), run()]);
    const [c, d] = await Promise.all([other.run(), other.run()]);

    expect(a.reenqueued + b.reenqueued).toBe(1);
    expect(tasks.controlTasks.size).toBe(1);
    expect((await lifecycle.view(JOB))?.reconciled.reenqueued).toBe(1);
    expect(c.cancelsResumed + d.cancelsResumed).toBe(1);
    expect(other.db.jobs.get(JOB)?.reconciled.cancelsResumed).toBe(1);
    expect(other.sent).toHaveLength(1);
  });
});

/** A job whose items got their tasks (one enqueued page), then lost them all (out of attempts). */
async function enqueuedThenLost(prompts = ['a', 'b', 'c']) {
  const world = await setup(prompts);
  const job = (await world.lifecycle.getJob(JOB))!;
  await world.planner.enqueuePage(job, 0);
  world.db.jobs.get(JOB)!.status = 'running';
  // Cloud Tasks deleted them after their last attempt: Cloud Run answered 429 before the worker.
  world.tasks.itemTasks.clear();
  const dueByMs = world.db.item(JOB, idOf(0))!.dueByMs!;
  return { ...world, job, dueByMs };
}

describe('reconcile: pending items no task will deliver (scenario 1)', () => {
  it('gives each item past its due time with no lease a new task, and counts it as an orphan', async () => {
    const { db, tasks, capture, run, advance, lifecycle, now, dueByMs } = await enqueuedThenLost();
    advance(dueByMs - now() + 1000);

    const report = await run();

    expect(report).toMatchObject({ orphans: 3, retasked: 0 });
    for (let i = 0; i < 3; i++) {
      expect(tasks.itemTasks.get(`${itemTaskId(JOB, idOf(i))}-r1`)).toMatchObject({
        itemId: idOf(i),
        round: 1,
      });
      expect(db.item(JOB, idOf(i))).toMatchObject({ state: 'pending', lease: null, rounds: 1 });
      // Its new task has a due time of its own: the next sweep is not before it.
      expect(db.item(JOB, idOf(i))!.dueByMs).toBeGreaterThan(now());
    }
    expect((await lifecycle.view(JOB))?.reconciled.orphans).toBe(3);
    expect(capture.events('reconcile.item_orphaned')).toHaveLength(3);
    expect((await run()).orphans).toBe(0);
  });

  it('leaves items alone before their due time, with a live lease, or while their model is paused', async () => {
    const { db, tasks, run, advance, now, dueByMs, job } = await enqueuedThenLost();
    const early = await run();
    advance(dueByMs - now() + 1000);
    db.lease(JOB, idOf(0), now() + 60_000);
    await db.stores.pauses.set(job.model, now() + 3_600_000, 'daily quota');

    const paused = await run();
    await db.stores.pauses.clear(job.model);
    const resumed = await run();

    expect(early.orphans).toBe(0);
    expect(paused.orphans).toBe(0);
    expect(resumed.orphans).toBe(2);
    expect(tasks.itemTasks.has(`${itemTaskId(JOB, idOf(0))}-r1`)).toBe(false);
  });

  it('moves the due time of an item released after a failed call (the task retries it)', async () => {
    const { db, run, advance, now, lifecycle, dueByMs } = await enqueuedThenLost(['a']);
    advance(dueByMs - now() - 1000);
    const claim = await lifecycle.claim(JOB, idOf(0), 30_000);
    if (claim.outcome !== 'claimed') throw new Error(claim.outcome);
    await lifecycle.release(claim.lease);
    advance(2000);

    const report = await run();

    expect(report.orphans).toBe(0);
    expect(db.item(JOB, idOf(0))!.dueByMs).toBeGreaterThan(now());
  });

  it('sweeps nothing when the orphan sweep is switched off', async () => {
    const { run, advance, now, dueByMs, tasks } = await enqueuedThenLost();
    advance(dueByMs - now() + 1000);

    const report = await run({ orphanSweep: false });

    expect(report.orphans).toBe(0);
    expect(tasks.itemTasks.size).toBe(0);
  });

  it('creates the task before it writes the item: a failed item write leaves a task, and the next run finishes', async () => {
    const { db, tasks, run, advance, now, dueByMs } = await enqueuedThenLost(['a']);
    advance(dueByMs - now() + 1000);
    db.failOnce('items.retask');

    const first = await run();
    const second = await run();

    expect(first.orphans).toBe(0);
    expect(second.orphans).toBe(1);
    // The same round's task both times (one name, created once): never an item with no task.
    expect([...tasks.itemTasks.keys()]).toEqual([`${itemTaskId(JOB, idOf(0))}-r1`]);
    expect(db.item(JOB, idOf(0))).toMatchObject({ rounds: 1, lease: null });
  });

  it(`fails an orphan with the reason after ${MAX_ROUNDS} rounds whose tasks reached it`, async () => {
    const { db, run, advance, now, dueByMs } = await enqueuedThenLost(['a']);
    // Each round's task reached the item (a delivery claimed it) and then no task delivered it.
    Object.assign(db.item(JOB, idOf(0))!, {
      rounds: MAX_ROUNDS,
      attempts: MAX_ROUNDS + 1,
      roundAttempts: MAX_ROUNDS,
    });
    advance(dueByMs - now() + 1000);

    const report = await run();

    expect(report.failed).toBe(1);
    expect(db.item(JOB, idOf(0))).toMatchObject({ state: 'failed', error: { code: 500, status: 'ABORTED' } });
    expect(db.item(JOB, idOf(0))?.error?.message).toMatch(/no task delivered it/);
  });
});

describe('reconcile: rounds whose task never reached the item', () => {
  it(`gives an orphan whose new tasks never reached it another task past ${MAX_ROUNDS} rounds`, async () => {
    // Arrange: claimed once by its first task, then three new tasks the worker never saw.
    const { db, tasks, capture, run, advance, now, dueByMs } = await enqueuedThenLost(['a']);
    Object.assign(db.item(JOB, idOf(0))!, {
      rounds: MAX_ROUNDS,
      attempts: 1,
      roundAttempts: 1,
      unreachedRounds: 2,
    });
    advance(dueByMs - now() + 1000);

    // Act
    const report = await run();

    // Assert: a new task, the round counted as unreached, the attempts it saw kept.
    expect(report).toMatchObject({ orphans: 1, failed: 0 });
    expect(tasks.itemTasks.has(`${itemTaskId(JOB, idOf(0))}-r${MAX_ROUNDS + 1}`)).toBe(true);
    expect(db.item(JOB, idOf(0))).toMatchObject({
      state: 'pending',
      rounds: MAX_ROUNDS + 1,
      unreachedRounds: 3,
      roundAttempts: 1,
    });
    expect(capture.events('reconcile.item_orphaned')[0]).toMatchObject({ unreached: true });
  });

  it('counts a round as reached when a delivery claimed the item since its last new task', async () => {
    const { db, run, advance, now, dueByMs } = await enqueuedThenLost(['a']);
    Object.assign(db.item(JOB, idOf(0))!, { rounds: 1, attempts: 3, roundAttempts: 1, unreachedRounds: 0 });
    advance(dueByMs - now() + 1000);

    await run();

    expect(db.item(JOB, idOf(0))).toMatchObject({ rounds: 2, unreachedRounds: 0, roundAttempts: 3 });
  });

  it(`fails the item with the reason after ${MAX_UNREACHED_ROUNDS} rounds no task reached it`, async () => {
    const { db, run, advance, now, dueByMs } = await enqueuedThenLost(['a']);
    Object.assign(db.item(JOB, idOf(0))!, {
      rounds: MAX_UNREACHED_ROUNDS,
      attempts: 0,
      roundAttempts: 0,
      unreachedRounds: MAX_UNREACHED_ROUNDS,
    });
    advance(dueByMs - now() + 1000);

    const report = await run();

    expect(report.failed).toBe(1);
    expect(db.item(JOB, idOf(0))).toMatchObject({ state: 'failed', error: { code: 500, status: 'ABORTED' } });
    expect(db.item(JOB, idOf(0))?.error?.message).toMatch(
      new RegExp(`No delivery reached the item: .*${MAX_UNREACHED_ROUNDS + 1} times \\(0 attempts\\)`),
    );
  });

  it.each([
    // attempts, roundAttempts, lease, rounds, unreachedRounds → unreached, giveUp
    [1, 0, false, 0, 0, false, undefined],
    [0, 0, false, 0, 0, true, undefined],
    [2, 2, true, 1, 0, false, undefined],
    [4, 3, false, MAX_ROUNDS, 0, false, 'reached'],
    [1, 1, false, MAX_ROUNDS, MAX_ROUNDS - 1, true, undefined],
    [1, 1, false, MAX_UNREACHED_ROUNDS + 1, MAX_UNREACHED_ROUNDS, true, 'unreached'],
  ] as const)(
    'attempts %i since %i (lease %s), %i rounds of which %i unreached: unreached %s, gives up %s',
    (attempts, roundAttempts, leased, rounds, unreachedRounds, unreached, giveUp) => {
      const lease = leased ? { id: 'l', untilMs: 0 } : null;
      expect(roundVerdict({ attempts, roundAttempts, lease, rounds, unreachedRounds })).toEqual({
        unreached,
        ...(giveUp ? { giveUp } : {}),
      });
    },
  );
});

describe('reconcile: a failure on one item (scenario 2)', () => {
  it('neither orphans the item nor stops the run: the lease stays until a task exists', async () => {
    const { db, tasks, capture, run, advance } = await setup();
    db.jobs.get(JOB)!.status = 'running';
    db.lease(JOB, idOf(0), T0 + 1000);
    db.lease(JOB, idOf(1), T0 + 1000);
    advance(5000);
    db.failOnce('ledger.reserve', new Error('14 UNAVAILABLE'));

    const first = await run();

    expect(first.retasked).toBe(1);
    expect(capture.events('reconcile.item_error')).toHaveLength(1);
    const stuck = [0, 1].find((i) => db.item(JOB, idOf(i))!.rounds === 0)!;
    // Untouched: still an expired lease, so the next run finds it again.
    expect(db.item(JOB, idOf(stuck))!.lease).not.toBeNull();
    const second = await run();
    expect(second.retasked).toBe(1);
    expect(tasks.itemTasks.has(`${itemTaskId(JOB, idOf(stuck))}-r1`)).toBe(true);
  });

  it('goes on with the jobs when listing expired leases fails', async () => {
    const { db, run, advance, capture } = await setup();
    advance(STALL_MS + 1000);
    db.failOnce('items.listExpiredLeases');

    const report = await run();

    expect(report).toMatchObject({ reenqueued: 1, errors: 1 });
    expect(capture.events('reconcile.list_expired_failed')).toHaveLength(1);
  });
});

describe('reconcile: fair across many jobs and items (scenario 5)', () => {
  it('reaches every live job, past the first page, with a cursor', async () => {
    const { lifecycle, run, advance, db } = await setup(['x']);
    const ids = Array.from({ length: 30 }, (_, i) => `job-many-${String(i).padStart(3, '0')}`);
    for (const id of ids) {
      await lifecycle.create({ id, model: 'gemini-2.5-flash', mode: 'realtime', total: 1, source: 'api' }, [
        {
          id: idOf(0),
          index: 0,
          key: 'k',
          request: { contents: [{ role: 'user', parts: [{ text: 'x' }] }] },
          estimatedTokens: 1,
        },
      ]);
    }
    advance(STALL_MS + 1000);

    const runs = [await run({ limits: { jobs: 10 } }), await run({ limits: { jobs: 10 } })];
    runs.push(await run({ limits: { jobs: 10 } }), await run({ limits: { jobs: 10 } }));

    expect(runs.reduce((n, r) => n + r.reenqueued, 0)).toBe(31);
    expect(ids.every((id) => db.jobs.get(id)!.reconciled.reenqueued === 1)).toBe(true);
  });

  it('reaches a due item behind more skipped items than one run reads', async () => {
    const prompts = Array.from({ length: 25 }, (_, i) => `p${i}`);
    const { db, tasks, lifecycle, run, advance, now, job } = await enqueuedThenLost(prompts);
    // Another job on another model, due a little later than the first job's items.
    await lifecycle.create(
      { id: 'job-late', model: 'gemini-2.5-pro', mode: 'realtime', total: 1, source: 'api' },
      [
        {
          id: idOf(0),
          index: 0,
          key: 'k',
          request: { contents: [{ role: 'user', parts: [{ text: 'x' }] }] },
          estimatedTokens: 1,
        },
      ],
    );
    const lastDue = Math.max(...prompts.map((_, i) => db.item(JOB, idOf(i))!.dueByMs!));
    await db.stores.jobs.setEnqueued('job-late', 1, lastDue + 10 * 60_000);
    db.jobs.get('job-late')!.status = 'running';
    db.item('job-late', idOf(0))!.dueByMs = lastDue + 500;
    await db.stores.pauses.set(job.model, lastDue + 3_600_000, 'daily quota');
    advance(lastDue - now() + 1000);

    const reports = [];
    for (let i = 0; i < 4; i++) reports.push(await run({ limits: { items: 10 } }));

    expect(reports.reduce((n, r) => n + r.orphans, 0)).toBe(1);
    expect(tasks.itemTasks.has(`${itemTaskId('job-late', idOf(0))}-r1`)).toBe(true);
  });
});
