import { randomUUID } from 'node:crypto';
import { Firestore } from '@google-cloud/firestore';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { itemIdForIndex } from '../../functions/core/jobs.js';
import { createLifecycle } from '../../functions/lifecycle/lifecycle.js';
import { createLogger } from '../../functions/platform/logger.js';
import { createStores } from '../../functions/platform/store/index.js';
import { FakeObjectStore, FakeTaskQueue } from '../helpers/fakes.js';

/**
 * `items.renew` on the real Firestore (the emulator): a delivery still working extends its lease at
 * its version, and one whose lease another delivery took is told so (issue 17, scenario 7).
 */
describe('lease renewal in Firestore', () => {
  const db = new Firestore({ projectId: 'e2e-renew', host: inject('firestoreEmulatorHost'), ssl: false });
  afterAll(() => db.terminate());

  async function oneItemJob() {
    const stores = createStores(db, { collectionPrefix: `renew-${randomUUID().slice(0, 8)}-` });
    const lifecycle = createLifecycle({
      stores,
      tasks: new FakeTaskQueue(),
      objects: new FakeObjectStore(),
      logger: createLogger({ level: 'silent' }),
      notify: async () => undefined,
      stallMs: 60_000,
    });
    const id = randomUUID();
    await lifecycle.create({ id, model: 'm-renew', mode: 'realtime', total: 1, source: 'api' }, [
      {
        id: itemIdForIndex(0),
        index: 0,
        key: '0',
        request: { contents: [{ role: 'user', parts: [{ text: 'p' }] }] },
        estimatedTokens: 10,
      },
    ]);
    return { stores, lifecycle, id };
  }

  it('extends a held lease at a new version, counts no attempt, and the renewed lease writes the outcome', async () => {
    const { stores, lifecycle, id } = await oneItemJob();
    const claim = await lifecycle.claim(id, itemIdForIndex(0), 1_000);
    if (claim.outcome !== 'claimed') throw new Error(`claim: ${claim.outcome}`);

    const renewed = await lifecycle.renew(claim.lease, 120_000);
    const [item] = await stores.items.list(id, { limit: 1 });
    const written = await lifecycle.complete(renewed!, {
      state: 'succeeded',
      response: { ok: true },
      usage: { promptTokens: 1, outputTokens: 1 },
      costUsd: 0,
    });

    expect(renewed?.version).not.toBe(claim.lease.version);
    expect(item?.lease?.untilMs).toBe(renewed?.untilMs);
    expect(renewed!.untilMs).toBeGreaterThanOrEqual(claim.lease.untilMs + 100_000);
    expect(item?.attempts).toBe(1);
    expect(written).toBe(true);
  });

  it('answers undefined when another delivery took the item after the lease ran out', async () => {
    const { lifecycle, id } = await oneItemJob();
    const a = await lifecycle.claim(id, itemIdForIndex(0), 1);
    await new Promise((r) => setTimeout(r, 20));
    const b = await lifecycle.claim(id, itemIdForIndex(0), 60_000);
    if (a.outcome !== 'claimed' || b.outcome !== 'claimed') throw new Error('both claims should succeed');

    expect(await lifecycle.renew(a.lease, 60_000)).toBeUndefined();
    expect(await lifecycle.renew(b.lease, 60_000)).toBeDefined();
  });
});
