import { describe, expect, it } from 'vitest';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { MAX_ROUNDS, reconcile } from '../../../functions/lifecycle/reconcile.js';
import { createLogger } from '../../../functions/platform/logger.js';
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
  const run = () =>
    reconcile({
      stores: world.db.stores,
      lifecycle: world.lifecycle,
      planner: world.planner,
      tasks: world.tasks,
      logger: createLogger({ destination: capture.stream }),
      stallMs: STALL_MS,
      now: () => now,
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
