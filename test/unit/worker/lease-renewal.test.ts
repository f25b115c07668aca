import { describe, expect, it } from 'vitest';
import type { WorkerReply } from '../../../functions/worker/handler.js';
import { handleTask } from '../../../functions/worker/handler.js';
import { SIM_ITEM, SIM_JOB, SIM_T0, simDelivery, simWorkerWorld } from '../../helpers/worker-world.js';

/**
 * Issue 17, scenario 7: a delivery that is still working (fetching media, planning again) renews its
 * lease before it calls Gemini, so a second delivery arriving meanwhile finds the item taken; one
 * that lost its lease meanwhile stops instead of calling Gemini too.
 */
const withMedia = {
  requests: [{ key: 'cat', prompt: 'What animal is this?', media: [{ gcsUri: 'gs://photos/cat.png' }] }],
};

describe('a delivery keeps its lease while it works', () => {
  it('renews the lease after slow media and a slow replanning, so a duplicate delivery meanwhile does not call Gemini', async () => {
    const { db, gemini, media, planner, clock, deps } = await simWorkerWorld({ body: withMedia });
    const late = SIM_T0 - 10_000;
    const attach = media.attach.bind(media);
    media.attach = async (request, refs) => {
      if (media.calls.length === 0) clock.advance(45_000);
      return attach(request, refs);
    };
    let duplicate: WorkerReply | undefined;
    deps.planner = {
      ...planner,
      replanLate: async () => {
        if (duplicate) return undefined;
        // The replanning waits on the ledger for 25 s; past the first lease, Cloud Tasks delivers again.
        clock.advance(25_000);
        duplicate = { status: 0, body: { outcome: 'running' } };
        duplicate = await handleTask(simDelivery(1, late), deps);
        return undefined;
      },
    };

    const reply = await handleTask(simDelivery(0, late), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'succeeded' } });
    expect(duplicate?.body.outcome).toBe('leased');
    expect(gemini.calls).toHaveLength(1);
    expect(db.item(SIM_JOB, SIM_ITEM)?.state).toBe('succeeded');
  });

  it('stops without calling Gemini when its lease ran out and another delivery took the item', async () => {
    const { db, gemini, media, clock, deps } = await simWorkerWorld({ body: withMedia });
    const attach = media.attach.bind(media);
    let duplicate: WorkerReply | undefined;
    media.attach = async (request, refs) => {
      if (media.calls.length === 0) {
        clock.advance(62_000);
        media.calls.push(refs);
        duplicate = await handleTask(simDelivery(1), deps);
        clock.advance(3_000);
      }
      return attach(request, refs);
    };

    const reply = await handleTask(simDelivery(), deps);

    expect(duplicate?.body.outcome).toBe('succeeded');
    expect(reply).toEqual({ status: 200, body: { outcome: 'lease-lost' } });
    expect(gemini.calls).toHaveLength(1);
    expect(db.completedWrites).toBe(1);
  });

  it('confirms its lease before the call after a slow replanning, so an item cancelled meanwhile is not sent', async () => {
    const { db, gemini, planner, clock, deps } = await simWorkerWorld();
    deps.planner = {
      ...planner,
      replanLate: async () => {
        // The ledger takes two seconds to answer; the job is cancelled meanwhile (its leased item too).
        clock.advance(2_000);
        await deps.lifecycle.cancel(SIM_JOB);
        return undefined;
      },
    };

    const reply = await handleTask(simDelivery(0, SIM_T0 - 10_000), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'lease-lost' } });
    expect(gemini.calls).toHaveLength(0);
    expect(db.item(SIM_JOB, SIM_ITEM)?.state).toBe('cancelled');
  });

  it('bounds the wait for a replanning: past it the item is given back, the replanning given up and the delivery retried, Gemini not called', async () => {
    const { db, gemini, planner, clock, deps } = await simWorkerWorld();
    let signal: AbortSignal | undefined;
    deps.planner = {
      ...planner,
      replanLate: (...args) => {
        signal = args[5];
        return new Promise<undefined>(() => undefined);
      },
    };
    deps.sleep = clock.sleep;

    const reply = await handleTask(simDelivery(0, SIM_T0 - 10_000), deps);

    expect(reply.status).toBe(500);
    expect(reply.body.outcome).toBe('replan-slow');
    expect(gemini.calls).toHaveLength(0);
    expect(db.item(SIM_JOB, SIM_ITEM)?.lease).toBeNull();
    // The replanning is told it was given up on: a reservation still queued is not made.
    expect(signal?.aborted).toBe(true);
  }, 3_000);

  it('renews no lease on a delivery that goes straight to Gemini (no extra write on the happy path)', async () => {
    const { db, deps } = await simWorkerWorld();

    await handleTask(simDelivery(), deps);

    expect(db.calls['items.renew'] ?? 0).toBe(0);
  });
});
