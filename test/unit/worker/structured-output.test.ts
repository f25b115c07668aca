import { describe, expect, it } from 'vitest';
import { SCHEMA_MISMATCH } from '../../../functions/core/structured-output.js';
import { repairDraftName } from '../../../functions/platform/object-store.js';
import { itemTaskName } from '../../../functions/platform/task-queue.js';
import { handleTask } from '../../../functions/worker/handler.js';
import { SIM_ITEM, SIM_JOB, simDelivery, simWorkerWorld } from '../../helpers/worker-world.js';

// The worker checks a structured answer against its schema: a miss is asked again once, as a call
// of its own planned on the model's ledger, with the first (paid) answer kept until then.

const SCHEMA = {
  type: 'object',
  properties: { title: { type: 'string' }, year: { type: 'integer' } },
  required: ['title', 'year'],
};
const BODY = {
  prompts: ['Give the title and year of the first Moon landing film.'],
  config: { responseMimeType: 'application/json', responseJsonSchema: SCHEMA },
};

/** A world whose Gemini answers `texts` in turn, each with 10 prompt and 4 output tokens. */
async function world(texts: string[]) {
  const w = await simWorkerWorld({ body: BODY });
  let n = 0;
  w.gemini.respond = async () => {
    const text = texts[Math.min(n++, texts.length - 1)]!;
    const response = {
      candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP' }],
      usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 4 },
    };
    return { response, usageMetadata: response.usageMetadata };
  };
  return w;
}

const repairTask = (w: Awaited<ReturnType<typeof world>>) =>
  w.tasks.itemTasks.get(itemTaskName(SIM_JOB, { itemId: SIM_ITEM, repair: true }));

describe('structured output, checked', () => {
  it('records an answer that matches its schema at once: one call, no draft, no repair', async () => {
    const w = await world(['{"title":"Apollo 11","year":2019}']);

    const reply = await handleTask(simDelivery(), w.deps);

    expect(reply.body.outcome).toBe('succeeded');
    expect(w.gemini.calls).toHaveLength(1);
    expect(w.db.item(SIM_JOB, SIM_ITEM)?.state).toBe('succeeded');
    expect(repairTask(w)).toBeUndefined();
  });

  it('keeps a first answer that misses, plans its repair at a slot of its own, then records the repair', async () => {
    const w = await world(['{"title":"Apollo 11","year":"2019"}', '{"title":"Apollo 11","year":2019}']);

    const first = await handleTask(simDelivery(), w.deps);
    const task = repairTask(w);
    const pending = w.db.item(SIM_JOB, SIM_ITEM)!;

    expect(first.body.outcome).toBe('repair-planned');
    expect(pending.state).toBe('pending');
    expect(task?.plannedMs).toBe(pending.plannedMs);
    expect(JSON.parse(w.objects.objects.get(repairDraftName(SIM_JOB, SIM_ITEM))!)).toMatchObject({
      problem: expect.stringMatching(/year must be integer/),
      usage: { promptTokens: 10, outputTokens: 4 },
    });
    // The repair is a call of its own on the model's ledger (this test planned no first call there).
    const ledger = w.db.ledgers.get(w.quotas.defaultModel);
    expect(Object.values(ledger?.requests ?? {}).reduce((a, b) => a + b, 0)).toBe(1);

    // A duplicate of the first task comes: the item has a newer plan, and nothing is bought again.
    const duplicate = await handleTask(simDelivery(1), w.deps);
    expect(duplicate.body.outcome).toBe('superseded');
    expect(w.gemini.calls).toHaveLength(1);

    const second = await handleTask(simDelivery(0, task!.plannedMs), w.deps);
    const done = w.db.item(SIM_JOB, SIM_ITEM)!;

    expect(second.body.outcome).toBe('succeeded');
    expect(w.gemini.calls).toHaveLength(2);
    expect(w.gemini.calls[1]!.request.contents.map((c) => c.role)).toEqual(['user', 'model', 'user']);
    expect(w.gemini.calls[1]!.request.contents[2]!.parts[0]!.text).toMatch(
      /^Your previous answer did not match the schema: .*year must be integer.*Answer again with JSON only/,
    );
    expect(done.response).toMatchObject({
      candidates: [{ content: { parts: [{ text: '{"title":"Apollo 11","year":2019}' }] } }],
    });
    expect(done.usage).toEqual({ promptTokens: 20, outputTokens: 8 });
    expect(w.objects.objects.has(repairDraftName(SIM_JOB, SIM_ITEM))).toBe(false);
    expect(w.capture.events('item.repaired')).toHaveLength(1);
  });

  it('records a repair that misses too as the item’s error, with both calls’ usage', async () => {
    const w = await world(['not json at all', '{"title":"Apollo 11"}']);

    await handleTask(simDelivery(), w.deps);
    const reply = await handleTask(simDelivery(0, repairTask(w)!.plannedMs), w.deps);
    const item = w.db.item(SIM_JOB, SIM_ITEM)!;

    expect(reply.body.outcome).toBe('failed');
    expect(w.gemini.calls).toHaveLength(2);
    expect(item.state).toBe('failed');
    expect(item.error).toEqual({
      ...SCHEMA_MISMATCH,
      message: expect.stringMatching(
        /nor did the one asked for again: answer must have required property 'year'/,
      ),
    });
    expect(item.usage).toEqual({ promptTokens: 20, outputTokens: 8 });
    expect(w.objects.objects.has(repairDraftName(SIM_JOB, SIM_ITEM))).toBe(false);
  });

  it('never buys the repair twice: a failure whose write was lost is recorded from the draft', async () => {
    const w = await world(['not json', 'still not json']);
    await handleTask(simDelivery(), w.deps);
    const plannedMs = repairTask(w)!.plannedMs;
    // The outcome write fails for the whole lease: the delivery gives up with an error (a retry).
    w.db.failWhile('items.settle', () => true);

    await expect(handleTask(simDelivery(0, plannedMs), w.deps)).rejects.toThrow(/UNAVAILABLE/);
    w.db.failWhile('items.settle', () => false);
    w.clock.advance(120_000);
    const retried = await handleTask(simDelivery(1, plannedMs), w.deps);

    expect(retried.body.outcome).toBe('failed');
    expect(w.gemini.calls).toHaveLength(2);
    expect(w.db.item(SIM_JOB, SIM_ITEM)?.error?.status).toBe('SCHEMA_MISMATCH');
  });
});
