/**
 * A cancel's frozen totals always equal the items (issue 17, scenario 10): a delivery that read the
 * job before the cancel may take its item's lease between the sweep's read and its write, so the
 * item survives the sweep; the cancel must not freeze its totals while such an item is pending.
 */
import { describe, expect, it } from 'vitest';
import type { JobView } from '../../../functions/core/jobs.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { reconcile } from '../../../functions/lifecycle/reconcile.js';
import { createLogger } from '../../../functions/platform/logger.js';
import type { FakeDb } from '../../helpers/fake-stores.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { testQuotas } from '../../helpers/test-quotas.js';

const JOB = 'job-cancel';
const T0 = Date.parse('2026-03-01T10:00:00Z');
const LEASE_MS = 120_000;
const idOf = (i: number) => String(i).padStart(9, '0');
const ANSWER = {
  state: 'succeeded' as const,
  response: { candidates: [] },
  usage: { promptTokens: 7, outputTokens: 3 },
  costUsd: 0.25,
};

async function setup(total = 2) {
  let now = T0;
  const quotas = testQuotas();
  const logger = createLogger({ level: 'silent' });
  const world = fakeWorld({ quotas, logger, clock: () => now, stallMs: 60_000 });
  const prompts = Array.from({ length: total }, (_, i) => `p${i}`);
  const job = normalizeJobRequest({ prompts }, quotas);
  await world.lifecycle.create(
    { id: JOB, model: job.model, mode: 'realtime', total, source: 'api' },
    job.items,
  );
  world.db.jobs.get(JOB)!.status = 'running';
  const reconcileNow = () =>
    reconcile({
      stores: world.db.stores,
      lifecycle: world.lifecycle,
      planner: world.planner,
      tasks: world.tasks,
      logger,
      stallMs: 60_000,
      now: () => now,
    });
  return {
    ...world,
    reconcileNow,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** The counts the items themselves hold. */
function itemCounts(db: FakeDb, jobId: string) {
  const items = [...(db.items.get(jobId)?.values() ?? [])];
  const n = (state: string) => items.filter((i) => i.state === state).length;
  return {
    total: items.length,
    succeeded: n('succeeded'),
    failed: n('failed'),
    cancelled: n('cancelled'),
    pending: n('pending'),
  };
}

const countsOf = (view: JobView | undefined) => view && { ...view.counts };

describe('cancel: the frozen totals equal the items', () => {
  it('a claim that read the job before the cancel and leased its item under the sweep is counted', async () => {
    // Arrange: the delivery read item 0 and its job (running) before the cancel...
    const { db, lifecycle } = await setup();
    const [item, job] = await db.stores.items.getWithJob(JOB, idOf(0));
    expect(job?.status).toBe('running');
    const ref = { jobId: JOB, itemId: idOf(0), version: item!.version, shards: job!.counterShards };
    // ...and its lease (the claim's write, on the version it read) lands between the sweep's query
    // and the sweep's writes.
    let leased: { version: string } | undefined;
    db.beforeSweepWrites = async () => {
      db.beforeSweepWrites = undefined;
      leased = await db.stores.items.lease(ref, LEASE_MS, T0);
    };

    // Act: the cancel runs; then the delivery writes its answer (Gemini was already called).
    const cancelled = await lifecycle.cancel(JOB);
    if (!leased) throw new Error('the lease did not land');
    const written = await lifecycle.complete({ ...ref, version: leased.version }, ANSWER);
    const view = await lifecycle.view(JOB);

    // Assert: whichever write won the item, the job's counts are the items' counts, for good.
    expect(db.jobs.get(JOB)?.cancelPending).toBe(false);
    expect(countsOf(view)).toEqual(itemCounts(db, JOB));
    expect(countsOf(cancelled?.view)).toEqual(itemCounts(db, JOB));
    expect(view?.counts.pending).toBe(0);
    expect(written).toBe(db.item(JOB, idOf(0))?.state === 'succeeded');
    const usage = written ? ANSWER.usage : { promptTokens: 0, outputTokens: 0 };
    expect(view?.usage).toEqual(usage);
  });

  it('never freezes while an item keeps surviving the sweep; the reconciler finishes it once it ends', async () => {
    // Arrange: a delivery whose lease lands under every sweep of this cancel (say, a lease renewal).
    const { db, lifecycle, reconcileNow, advance } = await setup(3);
    db.settle(JOB, idOf(2), { state: 'succeeded', response: {} });
    const claimed = await lifecycle.claim(JOB, idOf(0), LEASE_MS);
    if (claimed.outcome !== 'claimed') throw new Error(`claim: ${claimed.outcome}`);
    let lease = claimed.lease;
    db.beforeSweepWrites = async () => {
      const item = db.item(JOB, idOf(0))!;
      if (item.state !== 'pending') return;
      db.lease(JOB, idOf(0), T0 + LEASE_MS);
      lease = { ...lease, version: item.version };
    };

    // Act
    const cancelled = await lifecycle.cancel(JOB);
    const midway = structuredClone(db.jobs.get(JOB));
    db.beforeSweepWrites = undefined;
    const written = await lifecycle.complete(lease, ANSWER);
    advance(5 * 60_000);
    const report = await reconcileNow();
    const view = await lifecycle.view(JOB);

    // Assert
    expect(midway).toMatchObject({ status: 'cancelled', cancelPending: true, final: null });
    expect(cancelled?.view.status).toBe('cancelled');
    expect(written).toBe(true);
    expect(report.cancelsResumed).toBe(1);
    expect(db.jobs.get(JOB)?.cancelPending).toBe(false);
    expect(countsOf(view)).toEqual({ total: 3, succeeded: 2, failed: 0, cancelled: 1, pending: 0 });
    expect(countsOf(view)).toEqual(itemCounts(db, JOB));
    expect(view?.costUsd).toBe(0.25);
  });

  it('freezes tokens and cost that an outcome landing during the count would have skewed', async () => {
    // Arrange: item 0's lease survives the first sweep; its outcome lands in the middle of a count
    // (after the count's sums were read, before its counts per state).
    const { db, lifecycle } = await setup();
    const [item, job] = await db.stores.items.getWithJob(JOB, idOf(0));
    const ref = { jobId: JOB, itemId: idOf(0), version: item!.version, shards: job!.counterShards };
    db.beforeSweepWrites = async () => {
      db.beforeSweepWrites = undefined;
      const leased = await db.stores.items.lease(ref, LEASE_MS, T0);
      db.duringCount = async () => {
        db.duringCount = undefined;
        await lifecycle.complete({ ...ref, version: leased!.version }, ANSWER);
      };
    };

    // Act
    const cancelled = await lifecycle.cancel(JOB);

    // Assert
    expect(db.item(JOB, idOf(0))?.state).toBe('succeeded');
    expect(countsOf(cancelled?.view)).toEqual({
      total: 2,
      succeeded: 1,
      failed: 0,
      cancelled: 1,
      pending: 0,
    });
    expect(cancelled?.view.usage).toEqual(ANSWER.usage);
    expect(cancelled?.view.costUsd).toBe(ANSWER.costUsd);
  });
});
