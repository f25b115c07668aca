/**
 * Durable callbacks (issue 17, scenario 11): the commit that ends a job writes its callback to an
 * outbox; the finish tries it at once, and the tick's `deliverCallbacks` retries it with backoff for
 * up to a day, so neither a crash after the commit nor a receiver that is down loses it.
 */
import { describe, expect, it } from 'vitest';
import type { JobView } from '../../../functions/core/jobs.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { CallbackError } from '../../../functions/platform/notify.js';
import { deliverCallbacks } from '../../../functions/tick/callbacks.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

const JOB = 'job-cb';
const URL = 'https://example.test/hook';
const T0 = Date.parse('2026-03-01T10:00:00Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const idOf = (i: number) => String(i).padStart(9, '0');

/** A receiver that can be down (503) and records what it was sent. */
function receiver() {
  const got: Array<{ url: string; job: JobView }> = [];
  /** Every attempt's event (its webhook-id and whose key signs it), sent or not. */
  const events: Array<{ id: string; owner?: string }> = [];
  const state = { down: false as false | CallbackError };
  const notify = async (url: string, job: JobView, event: { id: string; owner?: string }) => {
    events.push(event);
    await Promise.resolve();
    if (state.down) throw state.down;
    got.push({ url, job: structuredClone(job) });
  };
  return { got, events, notify, state };
}

const unavailable = () =>
  new CallbackError('the callback answered 503', { retryable: true, statusCode: 503 });

async function setup(prompts = ['a', 'b'], owner?: string) {
  let now = T0;
  const capture = createLogCapture();
  const logger = createLogger({ destination: capture.stream });
  const quotas = testQuotas();
  const rx = receiver();
  const world = fakeWorld({ quotas, logger, clock: () => now, notify: rx.notify });
  const job = normalizeJobRequest({ prompts, callbackUrl: URL }, quotas);
  await world.lifecycle.create(
    {
      id: JOB,
      model: job.model,
      mode: 'realtime',
      total: prompts.length,
      source: 'api',
      callbackUrl: URL,
      ...(owner ? { owner } : {}),
    },
    job.items,
  );
  const settleAll = () => {
    for (let i = 0; i < prompts.length; i++)
      world.db.settle(JOB, idOf(i), { state: 'succeeded', response: { candidates: [] } });
  };
  const tick = () =>
    deliverCallbacks({
      callbacks: world.db.stores.callbacks,
      lifecycle: world.lifecycle,
      logger,
      now: () => now,
    });
  const advance = (ms: number) => {
    now += ms;
  };
  return { ...world, rx, capture, settleAll, tick, advance };
}

describe('durable callbacks', () => {
  it('a crash after the finish commit, before the callback: the next tick sends it', async () => {
    // Arrange: the instance dies right after the job turned terminal (here: the next store call throws).
    const { db, rx, settleAll, tick, advance, lifecycle } = await setup();
    settleAll();
    db.failOnce('ledger.dropJob', new Error('instance killed'));
    await expect(lifecycle.finishIfDone(JOB)).rejects.toThrow('instance killed');
    expect(db.jobs.get(JOB)?.status).toBe('succeeded');
    expect(rx.got).toHaveLength(0);

    // Act
    advance(MINUTE);
    const report = await tick();
    const again = await tick();

    // Assert
    expect(report).toEqual({ delivered: 1, failed: 0, gaveUp: 0 });
    expect(again).toEqual({ delivered: 0, failed: 0, gaveUp: 0 });
    expect(rx.got).toHaveLength(1);
    expect(rx.got[0]).toMatchObject({
      url: URL,
      job: { id: JOB, status: 'succeeded', counts: { succeeded: 2, pending: 0 } },
    });
    expect(rx.got[0]?.job).not.toHaveProperty('callback');
    expect((await lifecycle.view(JOB))?.callback).toMatchObject({ state: 'delivered', attempts: 1 });
  });

  it('a receiver down for longer than 30 s: later ticks retry with backoff until it answers', async () => {
    // Arrange
    const { rx, settleAll, tick, advance, lifecycle, capture } = await setup();
    settleAll();
    rx.state.down = unavailable();

    // Act: the finish's own attempt fails; the tick retries only once the backoff is over.
    expect(await lifecycle.finishIfDone(JOB)).toBe('finished');
    const afterFinish = (await lifecycle.view(JOB))?.callback;
    const tooSoon = await tick();
    advance(2 * MINUTE);
    const stillDown = await tick();
    advance(10 * MINUTE);
    rx.state.down = false;
    const back = await tick();

    // Assert
    expect(afterFinish).toMatchObject({
      state: 'pending',
      attempts: 1,
      lastError: 'the callback answered 503',
    });
    expect(afterFinish?.nextAttemptAt).toBe(new Date(T0 + MINUTE).toISOString());
    expect(tooSoon).toEqual({ delivered: 0, failed: 0, gaveUp: 0 });
    expect(stillDown).toEqual({ delivered: 0, failed: 1, gaveUp: 0 });
    expect(back).toEqual({ delivered: 1, failed: 0, gaveUp: 0 });
    expect(rx.got).toHaveLength(1);
    expect(rx.got[0]?.job).toMatchObject({ id: JOB, status: 'succeeded' });
    expect((await lifecycle.view(JOB))?.callback).toMatchObject({ state: 'delivered', attempts: 3 });
    expect(capture.events('job.callback_failed')).toHaveLength(2);
    expect(capture.events('job.callback_delivered')).toHaveLength(1);
  });

  it("every attempt is one event (the same webhook-id), signed for the job's owner", async () => {
    // Arrange
    const { rx, settleAll, tick, advance, lifecycle } = await setup(['a'], 'alice@example.com');
    settleAll();
    rx.state.down = unavailable();

    // Act: the finish's attempt fails, a later tick's succeeds.
    await lifecycle.finishIfDone(JOB);
    advance(2 * MINUTE);
    rx.state.down = false;
    await tick();

    // Assert
    expect(rx.got).toHaveLength(1);
    expect(rx.events).toEqual([
      { id: `job_${JOB}`, owner: 'alice@example.com' },
      { id: `job_${JOB}`, owner: 'alice@example.com' },
    ]);
  });

  it('a store fault before the POST costs the backoff, not the whole lease (found by the simulation, seed 2359)', async () => {
    // Arrange: the finish's own attempt fails (receiver down); at the next tick reading the job fails.
    const { db, rx, settleAll, tick, advance, lifecycle } = await setup();
    settleAll();
    rx.state.down = unavailable();
    expect(await lifecycle.finishIfDone(JOB)).toBe('finished');
    rx.state.down = false;
    advance(MINUTE + 1000);
    db.failOnce('jobs.get', new Error('14 UNAVAILABLE: jobs.get'));

    // Act: the tick whose view read fails, then one after its backoff (2 minutes), well within the lease.
    const failing = await tick();
    advance(2 * MINUTE + 1000);
    const next = await tick();

    // Assert
    expect(failing).toEqual({ delivered: 0, failed: 1, gaveUp: 0 });
    expect(next).toEqual({ delivered: 1, failed: 0, gaveUp: 0 });
    expect(rx.got).toHaveLength(1);
  });

  it('gives up after the retry window (a day by default) and says so on the job', async () => {
    const { rx, settleAll, tick, advance, lifecycle, capture } = await setup();
    settleAll();
    rx.state.down = unavailable();
    await lifecycle.finishIfDone(JOB);

    const reports = [];
    for (let hour = 0; hour < 26; hour++) {
      advance(HOUR);
      reports.push(await tick());
    }

    const gaveUp = reports.reduce((n: number, r) => n + r.gaveUp, 0);
    const view = (await lifecycle.view(JOB))?.callback;
    expect(gaveUp).toBe(1);
    expect(view).toMatchObject({ state: 'failed', lastError: 'the callback answered 503' });
    expect(view?.attempts).toBeGreaterThan(20);
    expect(view?.nextAttemptAt).toBeNull();
    expect(capture.events('job.callback_gave_up')).toHaveLength(1);
    expect(rx.got).toHaveLength(0);
  });

  it('does not retry an answer that cannot change (a 4xx)', async () => {
    const { rx, settleAll, tick, advance, lifecycle } = await setup();
    settleAll();
    rx.state.down = new CallbackError('the callback answered 404', { retryable: false, statusCode: 404 });

    await lifecycle.finishIfDone(JOB);
    advance(HOUR);
    const report = await tick();

    expect(report).toEqual({ delivered: 0, failed: 0, gaveUp: 0 });
    expect((await lifecycle.view(JOB))?.callback).toMatchObject({ state: 'failed', attempts: 1 });
  });

  it('two ticks at once send a due callback once', async () => {
    const { db, rx, settleAll, tick, advance, lifecycle } = await setup();
    settleAll();
    db.failOnce('ledger.dropJob', new Error('instance killed'));
    await lifecycle.finishIfDone(JOB).catch(() => undefined);
    advance(MINUTE);

    const reports = await Promise.all([tick(), tick()]);

    expect(reports.reduce((n, r) => n + r.delivered, 0)).toBe(1);
    expect(rx.got).toHaveLength(1);
  });

  it('a tick that dies after sending: the callback is sent again once its lease ran out (at least once)', async () => {
    const { db, rx, settleAll, tick, advance, lifecycle } = await setup();
    settleAll();
    db.failOnce('ledger.dropJob', new Error('instance killed'));
    await lifecycle.finishIfDone(JOB).catch(() => undefined);
    advance(MINUTE);
    db.failOnce('callbacks.settle', new Error('instance killed'));

    await tick().catch(() => undefined);
    const whileLeased = await tick();
    advance(10 * MINUTE);
    const afterLease = await tick();

    expect(whileLeased.delivered).toBe(0);
    expect(afterLease.delivered).toBe(1);
    expect(rx.got.map((g) => g.job.id)).toEqual([JOB, JOB]);
  });

  it('a cancelled job gets its callback through the outbox too, once its totals are frozen', async () => {
    const { db, rx, tick, advance, lifecycle } = await setup(['a', 'b', 'c']);
    db.settle(JOB, idOf(0), { state: 'succeeded', response: { candidates: [] } });
    rx.state.down = unavailable();

    await lifecycle.cancel(JOB);
    advance(5 * MINUTE);
    rx.state.down = false;
    const report = await tick();

    expect(report.delivered).toBe(1);
    expect(rx.got).toHaveLength(1);
    expect(rx.got[0]?.job).toMatchObject({
      status: 'cancelled',
      counts: { total: 3, succeeded: 1, cancelled: 2, pending: 0 },
    });
  });

  it('a job without a callback URL has no outbox record and no callback state', async () => {
    const { db, lifecycle, tick } = await setup();
    db.jobs.get(JOB)!.callbackUrl = undefined;
    db.settle(JOB, idOf(0), { state: 'succeeded', response: {} });
    db.settle(JOB, idOf(1), { state: 'succeeded', response: {} });

    await lifecycle.finishIfDone(JOB);

    expect(db.callbacks.size).toBe(0);
    expect((await lifecycle.view(JOB))?.callback).toBeUndefined();
    expect(await tick()).toEqual({ delivered: 0, failed: 0, gaveUp: 0 });
  });
});
