/**
 * The stores' contract, written once and run against every implementation: the fake stores (unit
 * tests and the simulation rely on them) and the real Firestore stores (the emulator). A fake that
 * drifts from Firestore makes every test built on it lie; this suite is what keeps them together.
 * Each test gets a fresh, isolated set of stores from `open`.
 */

import { describe, expect, it } from 'vitest';
import { DEFAULT_ADAPTIVE_RATE } from '../../functions/core/adaptive-rate.js';
import { itemIdForIndex, type JobSpec, type NewItem } from '../../functions/core/jobs.js';
import { sumTotals } from '../../functions/core/totals.js';
import type { Stores } from '../../functions/platform/store/index.js';
import type { ItemRef } from '../../functions/platform/store/items.js';
import { ReserveAbandonedError } from '../../functions/platform/store/ledger.js';
import { testQuotas } from './test-quotas.js';

export interface ContractWorld {
  stores: Stores;
  /** A time the stores' own clock agrees with (the fake's clock; real time for Firestore). */
  nowMs: number;
}

const T_SUCCEEDED = {
  state: 'succeeded' as const,
  response: { candidates: [{ content: { parts: [{ text: 'ok' }] } }] },
  usage: { promptTokens: 7, outputTokens: 3 },
  costUsd: 0.25,
};
const FAILED = { state: 'failed' as const, error: { code: 503, status: 'UNAVAILABLE', message: 'x' } };
const CANCELLED = { state: 'cancelled' as const, error: { code: 499, status: 'CANCELLED', message: 'c' } };

function newItems(n: number): NewItem[] {
  return Array.from({ length: n }, (_, i) => ({
    id: itemIdForIndex(i),
    index: i,
    key: String(i),
    request: { contents: [{ role: 'user', parts: [{ text: `p${i}` }] }] },
    estimatedTokens: 10,
  }));
}

/** Defines the contract's tests for stores made by `open`. */
/** The input tokens a ledger holds planned, summed over its seconds. */
const plannedTokens = (ledger: { buckets: Record<string, number> }) =>
  Object.values(ledger.buckets).reduce((a, b) => a + b, 0);

export function storeContract(name: string, open: () => Promise<ContractWorld>): void {
  async function job(total = 3, id = `job-${Math.random().toString(36).slice(2, 10)}`) {
    const w = await open();
    const spec: JobSpec = { id, model: 'm', mode: 'realtime', total, source: 'api', counterShards: 2 };
    await w.stores.items.createMany(id, newItems(total));
    await w.stores.jobs.create(spec, w.nowMs + 60_000);
    const ref = async (i: number): Promise<ItemRef> => {
      const [item] = await w.stores.items.getWithJob(id, itemIdForIndex(i));
      return { jobId: id, itemId: itemIdForIndex(i), version: item!.version, shards: 2 };
    };
    const item = async (i: number) => (await w.stores.items.getWithJob(id, itemIdForIndex(i)))[0]!;
    return { ...w, id, ref, item };
  }

  describe(`store contract: ${name}`, () => {
    it('leases an item only at the version read, counting the attempt', async () => {
      const { stores, nowMs, ref, item } = await job();
      const before = await ref(0);
      const leased = await stores.items.lease(before, 1000, nowMs);
      expect(leased).toBeDefined();
      expect(await stores.items.lease(before, 1000, nowMs)).toBeUndefined();
      const after = await item(0);
      expect(after.lease).toEqual({ id: leased!.leaseId, untilMs: nowMs + 1000 });
      expect(after.attempts).toBe(1);
      expect(after.version).toBe(leased!.version);
    });

    it('reads items of several jobs in one call, in the order asked, undefined for one that is not there', async () => {
      const first = await job(2);
      const secondId = `${first.id}-other`;
      await first.stores.items.createMany(secondId, newItems(1));
      const read = await first.stores.items.getMany([
        { jobId: secondId, itemId: itemIdForIndex(0) },
        { jobId: first.id, itemId: itemIdForIndex(1) },
        { jobId: first.id, itemId: itemIdForIndex(7) },
      ]);
      expect(read.map((i) => i && `${i.index}:${i.request.contents[0]!.parts[0]!.text}`)).toEqual([
        '0:p0',
        '1:p1',
        undefined,
      ]);
    });

    it("stores a planned unit's due time, and an outcome's steps for its result line", async () => {
      const { stores, ref, item, id } = await job(1);
      await stores.items.createMany(id, [{ ...newItems(2)[1]!, plannedDueByMs: 12_345 }]);
      const steps = { a: { model: 'm', response: { r: 1 } } };
      await stores.items.settle(await ref(0), { ...T_SUCCEEDED, steps });
      expect((await item(1)).dueByMs).toBe(12_345);
      expect((await item(0)).steps).toEqual(steps);
      expect((await stores.items.listOutcomes(id, { limit: 1 }))[0]?.steps).toEqual(steps);
    });

    it('releases a lease only at its version, and records a new plan', async () => {
      const { stores, nowMs, ref, item } = await job();
      const before = await ref(0);
      const leased = await stores.items.lease(before, 1000, nowMs);
      await stores.items.release(before);
      expect((await item(0)).lease).not.toBeNull();
      await stores.items.release({ ...before, version: leased!.version }, nowMs + 5000);
      const after = await item(0);
      expect(after.lease).toBeNull();
      expect(after.plannedMs).toBe(nowMs + 5000);
      expect(after.state).toBe('pending');
    });

    it('reads, leases and settles items called at once, each with its own answer', async () => {
      // Calls in the same turn share a request on Firestore (platform/store/coalesce.ts): a stale
      // version or a second lease of the same item must fail alone, never take the others with it.
      const { stores, nowMs, id, ref } = await job(6);
      const read = await Promise.all(
        [0, 1, 2, 3, 4, 5].map((i) => stores.items.getWithJob(id, itemIdForIndex(i))),
      );
      expect(read.map(([it, jb]) => [it?.index, jb?.id])).toEqual([0, 1, 2, 3, 4, 5].map((i) => [i, id]));
      const refs = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => ref(i)));
      const stale = refs[5]!;
      await stores.items.lease(stale, 1000, nowMs);

      const leases = await Promise.all([
        ...refs.slice(0, 5).map((r) => stores.items.lease(r, 1000, nowMs)),
        stores.items.lease(refs[0]!, 1000, nowMs),
        stores.items.lease(stale, 1000, nowMs),
      ]);
      expect(leases.slice(1, 5).every((l) => l !== undefined)).toBe(true);
      expect([leases[0], leases[5]].filter((l) => l !== undefined)).toHaveLength(1);
      expect(leases[6]).toBeUndefined();

      const held = [0, 1, 2, 3, 4].map((i) => ({
        ...refs[i]!,
        version: (i === 0 ? (leases[0] ?? leases[5]) : leases[i])!.version,
      }));
      const outcome = (prompt: number) => ({
        ...T_SUCCEEDED,
        usage: { promptTokens: prompt, outputTokens: 3 },
        estimatedTokens: 10,
      });
      const settled = await Promise.all([
        ...held.slice(0, 4).map((h, i) => stores.items.settle(h, outcome(10 + i))),
        stores.items.settle(held[4]!, FAILED),
        stores.items.settle(refs[4]!, FAILED),
      ]);
      expect(settled).toEqual([true, true, true, true, true, false]);
      const totals = await stores.counters.totals(id, 6, 2);
      expect(totals).toMatchObject({
        counts: { succeeded: 4, failed: 1, pending: 1 },
        usage: { promptTokens: 46, outputTokens: 12 },
      });
      expect(totals.costUsd).toBeCloseTo(1, 9);
      expect((await stores.counters.evidence(id, 2)).items).toBe(4);
    });

    it('settles an outcome exactly once, counting it in the totals', async () => {
      const { stores, nowMs, id, ref, item } = await job();
      const before = await ref(1);
      const leased = await stores.items.lease(before, 1000, nowMs);
      const lease = { ...before, version: leased!.version };
      expect(await stores.items.settle(lease, T_SUCCEEDED)).toBe(true);
      expect(await stores.items.settle(lease, FAILED)).toBe(false);
      expect(await stores.items.settle(before, FAILED)).toBe(false);
      const after = await item(1);
      expect(after).toMatchObject({ state: 'succeeded', lease: null, usage: T_SUCCEEDED.usage });
      expect(after.response).toEqual(T_SUCCEEDED.response);
      expect(after.finishedAt).toBeInstanceOf(Date);
      const totals = await stores.counters.totals(id, 3, 2);
      expect(totals).toEqual(sumTotals([{ succeeded: 1, ...T_SUCCEEDED.usage, costUsd: 0.25 }], 3));
    });

    it('counts an answer from the response cache as a hit, its item marked, at no cost', async () => {
      const { stores, nowMs, id, ref, item } = await job();
      const before = await ref(0);
      const leased = await stores.items.lease(before, 1000, nowMs);
      const cached = { jobId: 'job-that-paid', savedUsd: 0.25 };
      const hit = { ...T_SUCCEEDED, usage: { promptTokens: 0, outputTokens: 0 }, costUsd: 0, cached };
      expect(await stores.items.settle({ ...before, version: leased!.version }, hit)).toBe(true);

      expect((await item(0)).cached).toEqual(cached);
      const [outcome] = await stores.items.listOutcomes(id, { limit: 1 });
      expect(outcome!.cached).toEqual(cached);
      const totals = await stores.counters.totals(id, 3, 2);
      expect(totals.cache).toEqual({ hits: 1, savedUsd: 0.25 });
      expect(totals.costUsd).toBe(0);
    });

    it("counts a cancelled job's cache hits from its items, as its final totals are", async () => {
      const { stores, nowMs, id, ref } = await job();
      const before = await ref(0);
      const leased = await stores.items.lease(before, 1000, nowMs);
      const cached = { jobId: 'job-that-paid', savedUsd: 0.25 };
      const hit = { ...T_SUCCEEDED, usage: { promptTokens: 0, outputTokens: 0 }, costUsd: 0, cached };
      await stores.items.settle({ ...before, version: leased!.version }, hit);
      await stores.items.sweepPending(id, CANCELLED);
      expect((await stores.items.countStates(id, 3)).cache).toEqual({ hits: 1, savedUsd: 0.25 });
    });

    it('serves a response-cache entry until its expiry, and replaces it with a newer one', async () => {
      const { stores, nowMs, id } = await job(1);
      const entryId = `owner_${id}`;
      const entry = {
        responseJson: JSON.stringify(T_SUCCEEDED.response),
        usage: T_SUCCEEDED.usage,
        costUsd: 0.25,
        jobId: id,
        itemId: itemIdForIndex(0),
        expireAtMs: nowMs + 60_000,
      };
      expect(await stores.responseCache.get(entryId, nowMs)).toBeUndefined();
      await stores.responseCache.put(entryId, entry);

      expect(await stores.responseCache.get(entryId, nowMs)).toEqual(entry);
      expect(await stores.responseCache.get(entryId, nowMs + 60_000)).toBeUndefined();

      const big = { ...entry, responseJson: undefined, responseObject: 'answers/j/1.json', costUsd: 1 };
      const { responseJson: _none, ...stored } = big;
      await stores.responseCache.put(entryId, stored);
      expect(await stores.responseCache.get(entryId, nowMs)).toEqual(stored);
    });

    it('sums the token evidence of succeeded items that carry their estimate, and only theirs', async () => {
      const { stores, nowMs, id, ref } = await job(4);
      const settle = async (i: number, outcome: Parameters<Stores['items']['settle']>[1]) => {
        const before = await ref(i);
        const leased = await stores.items.lease(before, 1000, nowMs);
        await stores.items.settle({ ...before, version: leased!.version }, outcome);
      };
      await settle(0, { ...T_SUCCEEDED, usage: { promptTokens: 13, outputTokens: 3 }, estimatedTokens: 10 });
      await settle(1, { ...T_SUCCEEDED, usage: { promptTokens: 7, outputTokens: 3 }, estimatedTokens: 5 });
      // A media item (no estimate) and a failure are no evidence of the estimator.
      await settle(2, T_SUCCEEDED);
      await settle(3, FAILED);

      const ev = await stores.counters.evidence(id, 2);

      expect(ev).toEqual({
        items: 2,
        estimated: 15,
        estimatedSq: 125,
        counted: 20,
        countedSq: expect.closeTo(169 / 10 + 49 / 5, 9),
      });
      expect(await stores.counters.evidence('no-such-job', 2)).toEqual(
        expect.objectContaining({ items: 0, counted: 0 }),
      );
    });

    it("folds each job's new token evidence into its model's once, keeping it through other writes", async () => {
      const { stores, id } = await job(1);
      const model = `m-${id}`;
      const quota = {
        rpm: 600,
        tpm: 100_000,
        rpd: null,
        batch: false,
        price: { inputPerMillion: 1, outputPerMillion: 1 },
      };
      const ev = (items: number) => ({
        items,
        estimated: 100 * items,
        estimatedSq: 10_000 * items,
        counted: 130 * items,
        countedSq: 169 * items,
      });

      await stores.ledger.reserve(model, [100], quota, 1, { jobId: id, evidence: ev(10) });
      // The same evidence again adds nothing; more evidence adds only what is new.
      await stores.ledger.reserve(model, [100], quota, 1, { jobId: id, evidence: ev(10) });
      await stores.ledger.reserve(model, [100], quota, 1, { jobId: id, evidence: ev(25) });
      // A reserve without evidence (a replan) leaves the model's evidence alone.
      await stores.ledger.reserve(model, [100], quota, 1, { jobId: id });
      expect(await stores.ledger.evidence(model)).toEqual(ev(25));

      await stores.ledger.dropJob(model, id, ev(40));
      await stores.ledger.dropJob(model, id, ev(40));
      expect(await stores.ledger.evidence(model)).toEqual(ev(40));
      expect(await stores.ledger.evidence(`${model}-other`)).toEqual(expect.objectContaining({ items: 0 }));
    });

    it('settles a failure with its error', async () => {
      const { stores, ref, item } = await job();
      expect(await stores.items.settle(await ref(0), FAILED)).toBe(true);
      expect(await item(0)).toMatchObject({ state: 'failed', error: FAILED.error });
    });

    it('retasks an item only at its version: lease and plan cleared, a round counted', async () => {
      const { stores, nowMs, ref, item } = await job();
      const before = await ref(0);
      await stores.items.release(before, nowMs + 9000);
      const planned = await ref(0);
      const leased = await stores.items.lease(planned, 1000, nowMs);
      expect(await stores.items.retask(planned)).toBe(false);
      expect(await stores.items.retask({ ...planned, version: leased!.version })).toBe(true);
      expect(await item(0)).toMatchObject({ lease: null, plannedMs: null, rounds: 1, state: 'pending' });
    });

    it('retasks with the attempts seen and counts a round no task reached', async () => {
      const { stores, nowMs, ref, item } = await job();
      const next = { dueByMs: nowMs + 5000, attempts: 2 };
      expect(await stores.items.retask(await ref(0), { ...next, unreached: true })).toBe(true);
      expect(await stores.items.retask(await ref(0), { ...next, unreached: false })).toBe(true);
      expect(await stores.items.retask(await ref(0), { ...next, attempts: 3, unreached: true })).toBe(true);
      expect(await item(0)).toMatchObject({
        rounds: 3,
        unreachedRounds: 2,
        roundAttempts: 3,
        dueByMs: nowMs + 5000,
      });
    });

    it('lists pending items whose lease ran out, and only those', async () => {
      const { stores, nowMs, id, ref } = await job(4);
      for (const i of [0, 1, 2]) await stores.items.lease(await ref(i), 1000, nowMs);
      const leased2 = await ref(2);
      await stores.items.settle(leased2, FAILED);
      await stores.items.lease(await ref(3), 60_000, nowMs);
      const ids = async (atMs: number) =>
        (await stores.items.listExpiredLeases(atMs, 1000))
          .filter((i) => i.jobId === id)
          .map((i) => i.id)
          .sort();
      expect(await ids(nowMs + 500)).toEqual([]);
      expect(await ids(nowMs + 2000)).toEqual([itemIdForIndex(0), itemIdForIndex(1)]);
    });

    it('sweeps pending items of a cancelled job, leaving outcomes alone, and counts every state', async () => {
      const { stores, id, ref } = await job(3);
      await stores.items.settle(await ref(0), T_SUCCEEDED);
      const swept = await stores.items.sweepPending(id, CANCELLED);
      expect(swept.sort()).toEqual([itemIdForIndex(1), itemIdForIndex(2)]);
      expect(await stores.items.sweepPending(id, CANCELLED)).toEqual([]);
      const counted = await stores.items.countStates(id, 3);
      expect(counted.counts).toEqual({ total: 3, succeeded: 1, failed: 0, cancelled: 2, pending: 0 });
      expect(counted.usage).toEqual(T_SUCCEEDED.usage);
    });

    it('keeps an item that exists when its items are created again', async () => {
      const { stores, id, ref, item } = await job(2);
      await stores.items.settle(await ref(0), FAILED);
      await stores.items.createMany(id, newItems(2));
      expect((await item(0)).state).toBe('failed');
      expect((await item(1)).state).toBe('pending');
    });

    it('creates the missing items of a large set when some exist, keeping those', async () => {
      // More items than a commit holds: the chunk with an item already there goes in item by item.
      const { stores, id, ref, item } = await job(1);
      await stores.items.settle(await ref(0), FAILED);
      await stores.items.createMany(id, newItems(600));
      expect((await item(0)).state).toBe('failed');
      const read = await stores.items.getMany(
        [1, 249, 250, 599].map((i) => ({ jobId: id, itemId: itemIdForIndex(i) })),
      );
      expect(read.map((i) => i?.state)).toEqual(['pending', 'pending', 'pending', 'pending']);
    });

    it('keeps the name an item’s key came by (custom_id) for its result line, and none for key', async () => {
      const w = await open();
      const id = `job-${Math.random().toString(36).slice(2, 10)}`;
      const [plain, named] = newItems(2);
      await w.stores.items.createMany(id, [plain!, { ...named!, keyField: 'custom_id' }]);

      const outcomes = await w.stores.items.listOutcomes(id, { limit: 10 });
      const [item] = await w.stores.items.getWithJob(id, itemIdForIndex(1));

      expect(outcomes.map((o) => o.keyField)).toEqual([undefined, 'custom_id']);
      expect(item?.keyField).toBe('custom_id');
    });

    it("holds a job's enqueuing for one holder until its hold runs out, or the reconciler takes it", async () => {
      const { stores, id } = await job();
      const t = 1_000_000;

      expect(await stores.jobs.holdEnqueue(id, 'a', t, t + 30_000)).toBe(true);
      expect(await stores.jobs.holdEnqueue(id, 'b', t + 1000, t + 31_000)).toBe(false);
      expect(await stores.jobs.holdEnqueue(id, 'a', t + 1000, t + 31_000)).toBe(true);
      expect(await stores.jobs.holdEnqueue(id, 'b', t + 30_000, t + 60_000)).toBe(false);
      expect(await stores.jobs.holdEnqueue(id, 'b', t + 31_000, t + 61_000)).toBe(true);
      await stores.jobs.releaseEnqueue(id, 'a');
      expect(await stores.jobs.holdEnqueue(id, 'c', t + 32_000, t + 62_000)).toBe(false);
      await stores.jobs.releaseEnqueue(id, 'b');
      expect(await stores.jobs.holdEnqueue(id, 'c', t + 32_000, t + 62_000)).toBe(true);
      const held = (await stores.jobs.get(id))!;
      expect(await stores.jobs.setEnqueued(id, 0, t + 200_000, held.version)).toBe(true);
      expect(await stores.jobs.holdEnqueue(id, 'd', t + 33_000, t + 63_000)).toBe(true);
      expect(await stores.jobs.holdEnqueue('no-such-job', 'a', t, t + 30_000)).toBe(false);
    });

    it('finishes a job only at the version read', async () => {
      const { stores, id } = await job();
      const j = (await stores.jobs.get(id))!;
      const totals = sumTotals([{ succeeded: 3 }], 3);
      await stores.jobs.markRunning(id, j.version);
      expect(await stores.jobs.finish(id, j.version, 'succeeded', totals, null)).toBe(false);
      const running = (await stores.jobs.get(id))!;
      expect(running.status).toBe('running');
      expect(await stores.jobs.finish(id, running.version, 'succeeded', totals, running.startedAt)).toBe(
        true,
      );
      const done = (await stores.jobs.get(id))!;
      expect(done).toMatchObject({ status: 'succeeded', final: totals });
      expect(done.finishedAt).toBeInstanceOf(Date);
      expect(await stores.jobs.listUnsettled(1000)).not.toContainEqual(expect.objectContaining({ id }));
    });

    it('cancels a live job once, then freezes its totals at the version read', async () => {
      const { stores, id } = await job();
      expect(await stores.jobs.cancel('no-such-job')).toBeUndefined();
      const first = await stores.jobs.cancel(id);
      expect(first).toMatchObject({ changed: true, job: { status: 'cancelled', cancelPending: true } });
      expect((await stores.jobs.cancel(id))?.changed).toBe(false);
      const unsettled = await stores.jobs.listUnsettled(1000);
      expect(unsettled.map((j) => j.id)).toContain(id);
      const totals = sumTotals([{ cancelled: 3 }], 3);
      await stores.jobs.setNotice(id, 'moved on');
      expect(await stores.jobs.completeCancel(id, totals, first!.job.version)).toBe(false);
      const now = (await stores.jobs.get(id))!;
      expect(await stores.jobs.completeCancel(id, totals, now.version)).toBe(true);
      expect(await stores.jobs.get(id)).toMatchObject({ cancelPending: false, final: totals });
      expect((await stores.jobs.listUnsettled(1000)).map((j) => j.id)).not.toContain(id);
    });

    it('does not cancel a job that has finished', async () => {
      const { stores, id } = await job();
      const j = (await stores.jobs.get(id))!;
      await stores.jobs.finish(id, j.version, 'succeeded', sumTotals([{ succeeded: 3 }], 3), null);
      expect(await stores.jobs.cancel(id)).toMatchObject({ changed: false, job: { status: 'succeeded' } });
    });

    it('links re-runs to a job once each, and keeps retryOf, maxCostUsd and a budget stop', async () => {
      const w = await open();
      const id = `budget-${Math.random().toString(36).slice(2, 10)}`;
      const spec: JobSpec = {
        id,
        model: 'm',
        mode: 'realtime',
        total: 0,
        source: 'api',
        retryOf: 'old',
        maxCostUsd: 2.5,
      };
      await w.stores.jobs.create(spec, w.nowMs);
      await w.stores.jobs.addRetry(id, 'r1');
      await w.stores.jobs.addRetry(id, 'r2');
      await w.stores.jobs.addRetry(id, 'r1');
      const before = (await w.stores.jobs.get(id))!;
      await w.stores.jobs.stopForBudget(id, 'stopped');
      const after = (await w.stores.jobs.get(id))!;
      expect(before).toMatchObject({ retryOf: 'old', maxCostUsd: 2.5, retries: ['r1', 'r2'] });
      expect(before.budgetStopped).toBeUndefined();
      expect(after).toMatchObject({ budgetStopped: true, notice: 'stopped' });
    });

    it('records an Idempotency-Key with the first job only', async () => {
      const w = await open();
      const key = { keyId: `k-${Math.random().toString(36).slice(2)}`, bodyHash: 'h1' };
      const spec = (id: string): JobSpec => ({ id, model: 'm', mode: 'realtime', total: 0, source: 'api' });
      const a = `a-${key.keyId}`;
      expect(await w.stores.jobs.create(spec(a), w.nowMs, key)).toEqual({ created: true });
      expect(await w.stores.jobs.create(spec(`b-${key.keyId}`), w.nowMs, { ...key, bodyHash: 'h2' })).toEqual(
        {
          created: false,
          existing: { jobId: a, bodyHash: 'h1' },
        },
      );
      expect(await w.stores.jobs.get(`b-${key.keyId}`)).toBeUndefined();
    });

    it("counts a job's 429s by model (names with dots) and quotaId, apart from its totals", async () => {
      const { stores } = await open();
      const id = `q429-${Math.random().toString(36).slice(2, 10)}`;

      const none = await stores.counters.quota429s(id);
      await stores.counters.countQuota429(
        id,
        'gemini-2.5-flash',
        'GenerateRequestsPerMinutePerProjectPerModel',
      );
      await stores.counters.countQuota429(
        id,
        'gemini-2.5-flash',
        'GenerateRequestsPerMinutePerProjectPerModel',
      );
      await stores.counters.countQuota429(id, 'gemini-2.5-flash', 'unknown');
      await stores.counters.countQuota429(id, 'gemini-2.0-flash', 'GenerateRequestsPerDayPerProjectPerModel');

      expect(none).toEqual({});
      expect(await stores.counters.quota429s(id)).toEqual({
        'gemini-2.5-flash': { GenerateRequestsPerMinutePerProjectPerModel: 2, unknown: 1 },
        'gemini-2.0-flash': { GenerateRequestsPerDayPerProjectPerModel: 1 },
      });
    });

    it("plans every model's items on the one spend ledger of the project when a spend limit is set", async () => {
      const { stores, nowMs } = await open();
      const suffix = Math.random().toString(36).slice(2, 10);
      const quota = testQuotas().models['gemini-2.5-flash']!;
      const limit = { limitUsd: 1, windowSeconds: 10, headroom: 1 };
      let held: number | undefined;

      const first = await stores.ledger.reserve(`spend-a-${suffix}`, [10, 10, 10], quota, 1, {
        spend: { limit, costsUsd: [0.4, 0.4, 0.4], report: (s) => (held = s) },
      });
      const [other] = await stores.ledger.reserve(`spend-b-${suffix}`, [10], quota, 1, {
        spend: { limit, costsUsd: [0.4] },
      });

      // Two fit the window now; the third, and the other model's item, wait for the window to pass.
      expect(first[1]! - nowMs).toBeLessThan(2000);
      expect(first[2]! - nowMs).toBeGreaterThanOrEqual(10_000);
      expect(other! - nowMs).toBeGreaterThanOrEqual(10_000);
      expect(held).toBeGreaterThan(Math.floor(nowMs / 1000));
    });

    it("keeps a model's token cut through reservations, and deepens it only a minute on", async () => {
      const { stores, nowMs } = await open();
      const model = `cut-${Math.random().toString(36).slice(2, 10)}`;
      const quota = testQuotas().models['gemini-2.5-flash']!;

      const first = await stores.ledger.lowerTokenRate(model);
      await stores.ledger.reserve(model, [10], quota, 0.9);
      const again = await stores.ledger.lowerTokenRate(model);
      const read = await stores.ledger.read(model);

      expect(first).toMatchObject({ factor: 0.8 });
      expect(first.untilMs).toBeGreaterThanOrEqual(nowMs + 5 * 60_000);
      expect(again.factor).toBe(0.8);
      expect(read.tokenCut).toEqual(again);
      expect(plannedTokens(read)).toBe(10);
    });

    it('reads the ledger as it stands: reads at once agree, a read after a reservation sees it', async () => {
      const { stores } = await open();
      const model = `read-${Math.random().toString(36).slice(2, 10)}`;
      const quota = testQuotas().models['gemini-2.5-flash']!;

      const [a, b] = await Promise.all([stores.ledger.read(model), stores.ledger.read(model)]);
      await stores.ledger.reserve(model, [10], quota, 0.9);
      const after = await Promise.all([stores.ledger.read(model), stores.ledger.read(model)]);

      expect(a).toEqual(b);
      expect(plannedTokens(a)).toBe(0);
      expect(after.map(plannedTokens)).toEqual([10, 10]);
    });

    it('makes no reservation its caller gave up on while it waited for its turn', async () => {
      const { stores } = await open();
      const model = `abandon-${Math.random().toString(36).slice(2, 10)}`;
      const quota = testQuotas().models['gemini-2.5-flash']!;
      const giveUp = new AbortController();

      // The first reservation holds the model's lane; the second queues behind it and is given up.
      const first = stores.ledger.reserve(model, [10], quota, 0.9);
      const second = stores.ledger.reserve(model, [7], quota, 0.9, { signal: giveUp.signal });
      giveUp.abort();
      const settled = await Promise.allSettled([first, second]);
      const after = await stores.ledger.reserve(model, [5], quota, 0.9, {
        signal: new AbortController().signal,
      });

      expect(settled[0].status).toBe('fulfilled');
      expect(settled[1]).toMatchObject({ status: 'rejected', reason: expect.any(ReserveAbandonedError) });
      expect(after).toHaveLength(1);
      expect(plannedTokens(await stores.ledger.read(model))).toBe(15);
    });

    it("keeps an adaptive model's rate through reservations; a 429 lowers it once per window", async () => {
      const { stores } = await open();
      const model = `aimd-${Math.random().toString(36).slice(2, 10)}`;
      const base = testQuotas().models['gemini-2.5-flash']!;
      const quota = { ...base, adaptive: { ...DEFAULT_ADAPTIVE_RATE, startRpm: 100, sameWindowMs: 60_000 } };

      await stores.ledger.reserve(model, [10], quota, 0.9);
      const started = (await stores.ledger.read(model)).adaptive;
      const lowered = await stores.ledger.lowerRequestRate(model, quota);
      const same = await stores.ledger.lowerRequestRate(model, quota);
      await stores.ledger.reserve(model, [10], quota, 0.9);
      const read = await stores.ledger.read(model);
      const plain = await stores.ledger.lowerRequestRate(`${model}-fixed`, base);

      expect(started?.rpm).toBe(100);
      expect(lowered?.rpm).toBeCloseTo(70);
      expect(same).toEqual(lowered);
      expect(read.adaptive?.rpm).toBeCloseTo(70);
      expect(plain).toBeUndefined();
    });
  });
}
