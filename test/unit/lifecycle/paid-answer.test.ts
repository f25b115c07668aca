import { describe, expect, it } from 'vitest';
import { handleTask } from '../../../functions/worker/handler.js';
import { SIM_ITEM, SIM_JOB, SIM_T0, simDelivery, simWorkerWorld } from '../../helpers/worker-world.js';

/**
 * Issue 17, scenario 6: once Gemini has answered, the answer is paid for. Its outcome write is
 * retried for the rest of the lease; if the store is down for longer, the answer waits in the bucket
 * and the next delivery records it: Gemini is never called twice for one item.
 */
describe('a paid answer is never bought twice', () => {
  it('keeps retrying an outcome write that fails for longer than a few attempts, within the lease', async () => {
    const { db, gemini, clock, deps } = await simWorkerWorld();
    // Five seconds of a store that refuses every outcome write: well inside the 60 s lease.
    db.failWhile('items.settle', () => clock.now() < SIM_T0 + 5_000);

    const reply = await handleTask(simDelivery(), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'succeeded' } });
    expect(gemini.calls).toHaveLength(1);
    expect(db.item(SIM_JOB, SIM_ITEM)).toMatchObject({ state: 'succeeded', costUsd: expect.any(Number) });
    expect(db.completedWrites).toBe(1);
  });

  it('parks the answer in the bucket when the write fails for the whole lease; the next delivery records it without Gemini', async () => {
    const { db, gemini, objects, clock, capture, deps } = await simWorkerWorld();
    const storeBackAt = SIM_T0 + 120_000;
    db.failWhile('items.settle', () => clock.now() < storeBackAt);

    await expect(handleTask(simDelivery(), deps)).rejects.toThrow(/parked/);
    expect(clock.now()).toBeLessThan(SIM_T0 + deps.leaseMs);
    const parked = [...objects.objects.keys()].filter((n) => n.startsWith(`answers/${SIM_JOB}/`));
    expect(parked).toHaveLength(1);
    expect(db.item(SIM_JOB, SIM_ITEM)?.state).toBe('pending');

    clock.advance(storeBackAt - clock.now());
    const retry = await handleTask(simDelivery(1), deps);

    const item = db.item(SIM_JOB, SIM_ITEM)!;
    expect(retry).toEqual({ status: 200, body: { outcome: 'succeeded' } });
    expect(gemini.calls).toHaveLength(1);
    expect(item.state).toBe('succeeded');
    expect(item.response).toMatchObject({ candidates: [{ finishReason: 'STOP' }] });
    expect(item.usage).toMatchObject({ promptTokens: 12, outputTokens: 5 });
    expect(item.costUsd).toBeGreaterThan(0);
    expect(db.completedWrites).toBe(1);
    // Recorded, the parked copy goes.
    expect(objects.objects.has(parked[0]!)).toBe(false);
    expect(capture.events('item.answer_parked')).toHaveLength(1);
    expect(capture.events('item.parked_recorded')).toHaveLength(1);
  });

  it('on the last attempt parks the answer and hands the item to a new task, never recording it failed', async () => {
    const { db, gemini, tasks, clock, quotas, deps } = await simWorkerWorld();
    db.failWhile('items.settle', () => clock.now() < SIM_T0 + 120_000);

    const reply = await handleTask(simDelivery(quotas.queue.maxAttempts - 1), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'handed-over' } });
    expect(db.item(SIM_JOB, SIM_ITEM)?.state).toBe('pending');
    const [task] = [...tasks.itemTasks.values()];
    expect(task).toMatchObject({ itemId: SIM_ITEM });

    clock.advance(SIM_T0 + 120_000 - clock.now());
    const next = await handleTask(simDelivery(0, task!.plannedMs), deps);

    expect(next.body.outcome).toBe('succeeded');
    expect(gemini.calls).toHaveLength(1);
  });

  it('hands the item on, never fails it, when a last attempt cannot record a parked answer either', async () => {
    const { db, gemini, objects, tasks, clock, quotas, deps } = await simWorkerWorld();
    db.failWhile('items.settle', () => clock.now() < SIM_T0 + 300_000);
    await expect(handleTask(simDelivery(), deps)).rejects.toThrow(/parked/);
    clock.advance(120_000);

    const reply = await handleTask(simDelivery(quotas.queue.maxAttempts - 1), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'handed-over' } });
    expect(db.item(SIM_JOB, SIM_ITEM)?.state).toBe('pending');
    expect(objects.objects.has(`answers/${SIM_JOB}/${SIM_ITEM}.parked.json`)).toBe(true);
    expect(tasks.itemTasks.size).toBe(1);
    expect(gemini.calls).toHaveLength(1);
  });

  it('parks a big answer by the name of its bucket copy, and records that pointer later', async () => {
    const { db, gemini, objects, clock, deps } = await simWorkerWorld();
    const big = { candidates: [{ content: { role: 'model', parts: [{ text: 'x'.repeat(600_000) }] } }] };
    gemini.respond = async () => ({
      response: big,
      usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 9 },
    });
    db.failWhile('items.settle', () => clock.now() < SIM_T0 + 120_000);

    await expect(handleTask(simDelivery(), deps)).rejects.toThrow(/parked/);
    clock.advance(SIM_T0 + 120_000 - clock.now());
    await handleTask(simDelivery(1), deps);

    const item = db.item(SIM_JOB, SIM_ITEM)!;
    expect(gemini.calls).toHaveLength(1);
    expect(item.responseObject).toBe(`answers/${SIM_JOB}/${SIM_ITEM}.json`);
    expect(JSON.parse(objects.objects.get(item.responseObject!)!)).toEqual(big);
    expect(item.usage).toMatchObject({ promptTokens: 3, outputTokens: 9 });
  });

  it('reads the bucket on no first delivery: only an item leased before may have a parked answer', async () => {
    const { objects, deps } = await simWorkerWorld();
    let reads = 0;
    const getJson = objects.getJson.bind(objects);
    objects.getJson = (name) => {
      reads++;
      return getJson(name);
    };

    const reply = await handleTask(simDelivery(), deps);

    expect(reply.body.outcome).toBe('succeeded');
    expect(reads).toBe(0);
  });
});
