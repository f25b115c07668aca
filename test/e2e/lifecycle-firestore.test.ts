import { randomUUID } from 'node:crypto';
import { Firestore } from '@google-cloud/firestore';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { itemIdForIndex, type NewItem } from '../../functions/core/jobs.js';
import { createLifecycle } from '../../functions/lifecycle/lifecycle.js';
import { createLogger } from '../../functions/platform/logger.js';
import { CallbackError } from '../../functions/platform/notify.js';
import { createStores } from '../../functions/platform/store/index.js';
import { deliverCallbacks } from '../../functions/tick/callbacks.js';
import { FakeObjectStore, FakeTaskQueue } from '../helpers/fakes.js';

const QUOTA = {
  rpm: 60,
  tpm: 1_000_000,
  rpd: null,
  batch: true,
  price: { inputPerMillion: 1, outputPerMillion: 1 },
};

/** The lifecycle over the real Firestore stores (the emulator), one collection prefix per test. */
describe('job lifecycle in Firestore', () => {
  const db = new Firestore({ projectId: 'e2e-lifecycle', host: inject('firestoreEmulatorHost'), ssl: false });
  afterAll(() => db.terminate());

  function world(prefix: string) {
    const stores = createStores(db, { collectionPrefix: prefix });
    const objects = new FakeObjectStore();
    const lifecycle = createLifecycle({
      stores,
      tasks: new FakeTaskQueue(),
      objects,
      logger: createLogger({ level: 'silent' }),
      notify: async () => undefined,
      stallMs: 60_000,
    });
    return { stores, objects, lifecycle };
  }

  async function newJob(
    prefix: string,
    model: string,
    total: number,
    idempotency?: { keyId: string; bodyHash: string },
  ) {
    const w = world(prefix);
    const id = randomUUID();
    const items: NewItem[] = Array.from({ length: total }, (_, i) => ({
      id: itemIdForIndex(i),
      index: i,
      key: String(i),
      request: { contents: [{ role: 'user', parts: [{ text: `p${i}` }] }] },
      estimatedTokens: 10,
    }));
    const created = await w.lifecycle.create(
      { id, model, mode: 'realtime', total, source: 'api' },
      items,
      idempotency,
    );
    return { ...w, id: created.jobId, created };
  }

  const newPrefix = (what: string) => `${what}-${randomUUID().slice(0, 8)}-`;

  it('gives a cancelled job its slots back, and plans nothing more for it', async () => {
    // Arrange: at 60 RPM (about one a second) 30 items are planned over some 30 s.
    const prefix = newPrefix('ledger');
    const { stores, lifecycle, id } = await newJob(prefix, 'm-cancel', 30);
    const planned = await stores.ledger.reserve('m-cancel', Array(30).fill(10), QUOTA, 0.98, { jobId: id });

    // Act
    const cancelled = await lifecycle.cancel(id);
    const ledger = await stores.ledger.read('m-cancel');
    const afterCancel = await stores.ledger.reserve('m-cancel', [10], QUOTA, 0.98, { jobId: id });
    const other = await newJob(prefix, 'm-cancel', 1);
    const [next] = await stores.ledger.reserve('m-cancel', [10], QUOTA, 0.98, { jobId: other.id });

    // Assert
    const stillReserved = Object.values(ledger.requests ?? {}).reduce((a, b) => a + b, 0);
    expect(planned).toHaveLength(30);
    expect(planned.at(-1)! - planned[0]!).toBeGreaterThan(25_000);
    expect(stillReserved).toBeLessThanOrEqual(3); // the second the cancel landed in (and the burst)
    expect(afterCancel).toEqual([]);
    expect(next! - Date.now()).toBeLessThan(3000);
    expect(cancelled?.view.counts).toMatchObject({ total: 30, cancelled: 30, pending: 0 });
  });

  it('plans only up to untilMs and records the new plan of an item planned again', async () => {
    // Arrange
    const { stores, lifecycle, id } = await newJob(newPrefix('ledger'), 'm-until', 100);
    const untilMs = Date.now() + 20_000;

    // Act
    const planned = await stores.ledger.reserve('m-until', Array(100).fill(10), QUOTA, 0.98, {
      jobId: id,
      untilMs,
    });
    const claim = await lifecycle.claim(id, itemIdForIndex(0), 60_000);
    if (claim.outcome !== 'claimed') throw new Error(`claim: ${claim.outcome}`);
    await lifecycle.release(claim.lease, planned[0]! + 90_000);
    const [item] = await stores.items.list(id, { limit: 1 });

    // Assert
    expect(planned.length).toBeGreaterThan(15);
    expect(planned.length).toBeLessThan(30);
    expect(Math.max(...planned)).toBeLessThan(untilMs + 1000);
    expect(item?.plannedMs).toBe(planned[0]! + 90_000);
    expect(item?.state).toBe('pending');
  });

  it('finishes a job exactly once when the last items and the watcher all try at once', async () => {
    // Arrange: a one-item job whose item is done.
    const { lifecycle, id } = await newJob(newPrefix('finish'), 'm-finish', 1);
    const claim = await lifecycle.claim(id, itemIdForIndex(0), 60_000);
    if (claim.outcome !== 'claimed') throw new Error(`claim: ${claim.outcome}`);
    await lifecycle.complete(claim.lease, {
      state: 'succeeded',
      response: { candidates: [] },
      usage: { promptTokens: 3, outputTokens: 4 },
      costUsd: 0.001,
    });

    // Act
    const results = await Promise.all(Array.from({ length: 8 }, () => lifecycle.finishIfDone(id)));
    const job = await lifecycle.view(id);

    // Assert
    expect(results.filter((r) => r === 'finished')).toHaveLength(1);
    expect(job).toMatchObject({ status: 'succeeded', counts: { succeeded: 1, pending: 0 } });
    expect(job?.finishedAt).not.toBeNull();
  });

  it('stores items again (a duplicate delivery of the same file) without resetting a finished one', async () => {
    const { lifecycle, id } = await newJob(newPrefix('again'), 'm-again', 2);
    const claim = await lifecycle.claim(id, itemIdForIndex(0), 60_000);
    if (claim.outcome !== 'claimed') throw new Error(`claim: ${claim.outcome}`);
    await lifecycle.complete(claim.lease, {
      state: 'succeeded',
      response: { candidates: [] },
      usage: { promptTokens: 1, outputTokens: 1 },
      costUsd: 0,
    });

    await lifecycle.storeItems(id, [
      { id: itemIdForIndex(0), index: 0, key: '0', request: { contents: [] }, estimatedTokens: 1 },
      { id: itemIdForIndex(1), index: 1, key: '1', request: { contents: [] }, estimatedTokens: 1 },
    ]);

    const entries = [];
    for await (const line of lifecycle.resultLines(id)) entries.push(JSON.parse(line));
    expect(entries).toEqual([
      { key: '0', index: 0, response: { candidates: [] } },
      { key: '1', index: 1, state: 'pending' },
    ]);
  });

  it('writes an outcome only for the lease holder: a stale lease is refused, not an error', async () => {
    // Arrange: delivery A claims, its lease runs out, delivery B claims the item again.
    const { stores, lifecycle, id } = await newJob(newPrefix('lease'), 'm-lease', 1);
    const a = await lifecycle.claim(id, itemIdForIndex(0), 1);
    await new Promise((r) => setTimeout(r, 20));
    const b = await lifecycle.claim(id, itemIdForIndex(0), 60_000);
    if (a.outcome !== 'claimed' || b.outcome !== 'claimed') throw new Error('both claims should succeed');
    const outcome = {
      state: 'succeeded' as const,
      response: { who: 'x' },
      usage: { promptTokens: 1, outputTokens: 1 },
      costUsd: 0,
    };

    // Act
    const byA = await lifecycle.complete(a.lease, { ...outcome, response: { who: 'a' } });
    const byB = await lifecycle.complete(b.lease, { ...outcome, response: { who: 'b' } });
    const [item] = await stores.items.list(id, { limit: 1 });

    // Assert
    expect([byA, byB]).toEqual([false, true]);
    expect(item?.response).toEqual({ who: 'b' });
    expect((await lifecycle.view(id))?.counts).toMatchObject({ succeeded: 1, pending: 0 });
  });

  it('stores an answer too big for the item document in the bucket, and reads it back whole', async () => {
    // Arrange: a 1.5 MB answer (an image model's inline image is this big); a document holds 1 MiB.
    const { stores, lifecycle, objects, id } = await newJob(newPrefix('big'), 'm-big', 1);
    const claim = await lifecycle.claim(id, itemIdForIndex(0), 60_000);
    if (claim.outcome !== 'claimed') throw new Error(`claim: ${claim.outcome}`);
    const response = { candidates: [{ content: { parts: [{ text: 'z'.repeat(1_500_000) }] } }] };

    // Act
    const written = await lifecycle.complete(claim.lease, {
      state: 'succeeded',
      response,
      usage: { promptTokens: 1, outputTokens: 375_000 },
      costUsd: 0,
    });
    const [item] = await stores.items.list(id, { limit: 1 });

    // Assert
    expect(written).toBe(true);
    expect(item?.state).toBe('succeeded');
    expect(item?.responseObject).toBe(`answers/${id}/${itemIdForIndex(0)}.json`);
    expect(objects.objects.has(item!.responseObject!)).toBe(true);
    expect(await lifecycle.responseOf(item!)).toEqual(response);
  });

  it('gives one job for one idempotency key, even when two requests race', async () => {
    const prefix = newPrefix('idem');
    const key = { keyId: randomUUID(), bodyHash: 'h1' };

    const [a, b] = await Promise.all([newJob(prefix, 'm-idem', 2, key), newJob(prefix, 'm-idem', 2, key)]);

    expect(a.id).toBe(b.id);
    expect([a.created.replayed, b.created.replayed].sort()).toEqual([false, true]);
  });

  it('finds leases that ran out, jobs still live, and cancels still sweeping', async () => {
    // Arrange
    const prefix = newPrefix('reconcile');
    const live = await newJob(prefix, 'm-rec', 2);
    const claim = await live.lifecycle.claim(live.id, itemIdForIndex(1), 1);
    await new Promise((r) => setTimeout(r, 20));
    const halfCancelled = await newJob(prefix, 'm-rec', 2);
    await halfCancelled.stores.jobs.cancel(halfCancelled.id); // as a cancel that crashed right after

    // Act
    const expired = await live.stores.items.listExpiredLeases(Date.now(), 50);
    const unsettled = await live.stores.jobs.listUnsettled(50);

    // Assert
    expect(claim.outcome).toBe('claimed');
    expect(expired.map((i) => [i.jobId, i.id])).toEqual([[live.id, itemIdForIndex(1)]]);
    expect(unsettled.map((j) => j.id).sort()).toEqual([live.id, halfCancelled.id].sort());
    expect(unsettled.find((j) => j.id === halfCancelled.id)).toMatchObject({
      status: 'cancelled',
      cancelPending: true,
    });
  });

  it('sets due times, and pages pending items past them across jobs with a cursor (the orphan sweep)', async () => {
    // Arrange: due times far in the past, so no other test's items fall in the window.
    const prefix = newPrefix('due');
    const a = await newJob(prefix, 'm-due', 3);
    const b = await newJob(prefix, 'm-due', 3);
    const [a0, a1, a2] = await a.stores.items.list(a.id, { limit: 3 });
    const [b0, b1, b2] = await b.stores.items.list(b.id, { limit: 3 });
    // a2 is taken by a delivery after the page was read: its due time is not written over it.
    const taken = await a.lifecycle.claim(a.id, a2!.id, 60_000);
    await a.stores.items.setDue(a.id, [
      { itemId: a0!.id, version: a0!.version, dueByMs: 1000 },
      { itemId: a1!.id, version: a1!.version, dueByMs: 3000 },
      { itemId: a2!.id, version: a2!.version, dueByMs: 500 },
    ]);
    await b.stores.items.setDue(b.id, [
      { itemId: b0!.id, version: b0!.version, dueByMs: 2000 },
      { itemId: b1!.id, version: b1!.version, dueByMs: 10_000 },
      { itemId: b2!.id, version: b2!.version, dueByMs: 700 },
    ]);
    const b2Claim = await b.lifecycle.claim(b.id, b2!.id, 60_000);
    if (b2Claim.outcome !== 'claimed') throw new Error(b2Claim.outcome);
    await b.lifecycle.complete(b2Claim.lease, {
      state: 'succeeded',
      response: { ok: 1 },
      usage: { promptTokens: 1, outputTokens: 1 },
      costUsd: 0,
    });

    // Act
    const first = await a.stores.items.listOverdue(5000, 2);
    const second = await a.stores.items.listOverdue(5000, 2, first.next);

    // Assert: by due time, pending only, nothing twice, the last page without a cursor.
    expect(taken.outcome).toBe('claimed');
    const ids = (page: typeof first) => page.items.map((i) => [i.jobId, i.id, i.dueByMs]);
    expect(ids(first)).toEqual([
      [a.id, a0!.id, 1000],
      [b.id, b0!.id, 2000],
    ]);
    expect(ids(second)).toEqual([[a.id, a1!.id, 3000]]);
    expect(second.next).toBeUndefined();
  });

  it('records a new task of the reconciler with its due time, once, and keeps the reconciler cursor', async () => {
    const prefix = newPrefix('retask');
    const { stores, id } = await newJob(prefix, 'm-due', 1);
    const [item] = await stores.items.list(id, { limit: 1 });
    const ref = { jobId: id, itemId: item!.id, version: item!.version, shards: 16 };

    const first = await stores.items.retask(ref, { dueByMs: 9000 });
    const again = await stores.items.retask(ref, { dueByMs: 9999 });
    const cursor = {
      jobsAfter: 'job-x',
      overdueAfter: { dueByMs: 1000, path: `${prefix}jobs/${id}/items/${item!.id}` },
    };
    await stores.jobs.writeReconcileCursor(cursor);
    const kept = await stores.jobs.readReconcileCursor();
    await stores.jobs.writeReconcileCursor({});

    expect([first, again]).toEqual([true, false]);
    expect((await stores.items.list(id, { limit: 1 }))[0]).toMatchObject({
      rounds: 1,
      dueByMs: 9000,
      lease: null,
    });
    expect(kept).toEqual(cursor);
    expect(await stores.jobs.readReconcileCursor()).toEqual({});
  });

  it('marks a pause resumed and clears it only while it is the pause read, never a newer one', async () => {
    const { pauses } = createStores(db, { collectionPrefix: newPrefix('pause') });
    await pauses.set('m-pause', 1000, 'per day');

    const wrong = await pauses.markResumed('m-pause', 999, 5000);
    const right = await pauses.markResumed('m-pause', 1000, 5000);
    const marked = await pauses.list();
    await pauses.set('m-pause', 2000, 'per day again');
    await pauses.clear('m-pause', 1000);
    const kept = await pauses.list();
    await pauses.clear('m-pause', 2000);

    expect([wrong, right]).toEqual([false, true]);
    expect(marked).toEqual([{ model: 'm-pause', untilMs: 1000, reason: 'per day', resumedAtMs: 5000 }]);
    expect(kept).toEqual([{ model: 'm-pause', untilMs: 2000, reason: 'per day again' }]);
    expect(await pauses.list()).toEqual([]);
    expect(await pauses.markResumed('m-pause', 2000, 6000)).toBe(false);
  });

  it('rejects when an item cannot be stored, with no write left unhandled, and stores no job', async () => {
    // Arrange: an item over Firestore's 1 MiB document limit (ingest refuses these; this is the store's
    // own guard). A write whose failure nobody awaits would kill the instance.
    const { lifecycle, stores } = world(newPrefix('create'));
    const id = randomUUID();
    const huge: NewItem = {
      id: itemIdForIndex(0),
      index: 0,
      key: '0',
      request: { contents: [{ role: 'user', parts: [{ text: 'x'.repeat(1_100_000) }] }] },
      estimatedTokens: 1,
    };

    // Act
    const created = lifecycle.create({ id, model: 'm-create', mode: 'realtime', total: 1, source: 'api' }, [
      huge,
    ]);

    // Assert
    await expect(created).rejects.toThrow();
    expect(await stores.jobs.get(id)).toBeUndefined();
  });

  it('writes the callback outbox record in the commit that ends a job, and a tick delivers it once', async () => {
    // Arrange: a receiver that is down at first, and a clock the test moves.
    const prefix = newPrefix('outbox');
    const stores = createStores(db, { collectionPrefix: prefix });
    let offset = 0;
    const now = () => Date.now() + offset;
    const sent: Array<{ url: string; id: string; status: string }> = [];
    let down = true;
    const lifecycle = createLifecycle({
      stores,
      tasks: new FakeTaskQueue(),
      objects: new FakeObjectStore(),
      logger: createLogger({ level: 'silent' }),
      notify: async (url, job) => {
        if (down) throw new CallbackError('the callback answered 503', { retryable: true, statusCode: 503 });
        sent.push({ url, id: job.id, status: job.status });
      },
      stallMs: 60_000,
      now,
    });
    const url = 'https://example.test/hook';
    const [done, open] = [randomUUID(), randomUUID()];
    for (const id of [done, open]) {
      await lifecycle.create(
        { id, model: 'm-outbox', mode: 'realtime', total: 1, source: 'api', callbackUrl: url },
        [{ id: itemIdForIndex(0), index: 0, key: '0', request: { contents: [] }, estimatedTokens: 1 }],
      );
    }
    const claim = await lifecycle.claim(done, itemIdForIndex(0), 60_000);
    if (claim.outcome !== 'claimed') throw new Error(`claim: ${claim.outcome}`);
    await lifecycle.complete(claim.lease, {
      state: 'succeeded',
      response: {},
      usage: { promptTokens: 1, outputTokens: 1 },
      costUsd: 0,
    });
    const tick = () =>
      deliverCallbacks({
        callbacks: stores.callbacks,
        lifecycle,
        logger: createLogger({ level: 'silent' }),
        now,
      });

    // Act: a finish that lost its precondition writes neither; the real one writes both, and its
    // own attempt fails; two ticks at once, once the backoff is over, send it once.
    const stale = (await stores.jobs.get(done))!;
    await stores.jobs.setNotice(done, 'someone wrote the job');
    const lost = await stores.jobs.finish(
      done,
      stale.version,
      'succeeded',
      await stores.items.countStates(done, 1),
      null,
      {
        url,
        sinceMs: now(),
      },
    );
    const afterLost = await stores.callbacks.get(done);
    const finished = await lifecycle.finishIfDone(done);
    const afterFinish = (await lifecycle.view(done))?.callback;
    down = false;
    const tooSoon = await tick();
    offset += 5 * 60_000;
    const reports = await Promise.all([tick(), tick()]);
    const cancelled = await lifecycle.cancel(open);
    const afterTicks = await lifecycle.view(done);

    // Assert
    expect(lost).toBe(false);
    expect(afterLost).toBeUndefined();
    expect(finished).toBe('finished');
    expect(afterFinish).toMatchObject({
      state: 'pending',
      attempts: 1,
      lastError: 'the callback answered 503',
    });
    expect(tooSoon.delivered).toBe(0);
    expect(reports.reduce((n, r) => n + r.delivered, 0)).toBe(1);
    expect(afterTicks?.callback).toMatchObject({ state: 'delivered', attempts: 2, nextAttemptAt: null });
    expect(cancelled?.view.callback).toMatchObject({ state: 'delivered', attempts: 1 });
    expect(sent).toEqual([
      { url, id: done, status: 'succeeded' },
      { url, id: open, status: 'cancelled' },
    ]);
    expect(await stores.callbacks.listDue(now() + 86_400_000, 10)).toEqual([]);
  });
});
