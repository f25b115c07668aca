import { describe, expect, it } from 'vitest';
import type { GenerateContentRequest, JobSpec } from '../../../functions/core/jobs.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { canonicalJson } from '../../../functions/core/rerun.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { itemTaskId } from '../../../functions/platform/task-queue.js';
import { handleTask, type TaskDelivery } from '../../../functions/worker/handler.js';
import { cacheEntryId, createResponseCache } from '../../../functions/worker/response-cache.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';
import { workerDepsOn } from '../../helpers/worker-world.js';

const T0 = Date.parse('2026-12-06T12:00:00Z');
const HOUR = 3_600_000;
const QUEUE = 'projects/fanout-local/locations/us-central1/queues/fanout-gemini-2-5-flash';
const ITEM = '000000000';

/** A world of fake stores whose worker has the response cache (TTL one day), on a clock tests move. */
function setup(ttlMs = 24 * HOUR) {
  const quotas = testQuotas();
  const capture = createLogCapture();
  const logger = createLogger({ destination: capture.stream });
  const clock = { ms: T0 };
  const world = fakeWorld({ quotas, logger, clock: () => clock.ms });
  const deps = workerDepsOn(
    world,
    { quotas, logger, now: () => clock.ms },
    {
      responseCache: createResponseCache({
        store: world.db.stores.responseCache,
        objects: world.objects,
        ledger: world.db.stores.ledger,
        quotas,
        ttlMs,
        now: () => clock.ms,
      }),
    },
  );
  /** Stores a one-item job of `prompt` and runs its item once; the outcome the worker answered. */
  const run = async (id: string, prompt: string, spec: Partial<JobSpec> = {}, plannedMs?: number) => {
    const job = normalizeJobRequest({ prompts: [prompt] }, quotas);
    await world.lifecycle.create(
      { id, model: job.model, mode: 'realtime', total: 1, source: 'api', owner: 'ana@example.com', ...spec },
      job.items,
    );
    const delivery: TaskDelivery = {
      queueName: QUEUE,
      taskName: `${QUEUE}/tasks/${itemTaskId(id, ITEM)}`,
      retryCount: 0,
      executionCount: 0,
      payload: { kind: 'item', jobId: id, itemId: ITEM, ...(plannedMs === undefined ? {} : { plannedMs }) },
    };
    return handleTask(delivery, deps);
  };
  const line = async (id: string) => {
    const [item] = await world.lifecycle.listOutcomes(id, { limit: 1 });
    return world.lifecycle.resultEntry(item!);
  };
  return { world, deps, clock, run, line, capture, quotas };
}

describe('the cache key', () => {
  const request: GenerateContentRequest = {
    contents: [{ role: 'user', parts: [{ text: 'Name a colour.' }] }],
    generationConfig: { temperature: 0, maxOutputTokens: 20 },
  };

  it('is the same for the same request written in another key order or on another tier', () => {
    const reordered = {
      generationConfig: { maxOutputTokens: 20, temperature: 0, serviceTier: 'flex' },
      contents: [{ parts: [{ text: 'Name a colour.' }], role: 'user' }],
    };
    expect(cacheEntryId('ana', 'gemini-2.5-flash', reordered)).toBe(
      cacheEntryId('ana', 'gemini-2.5-flash', request),
    );
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
  });

  it('differs by owner, model, contents, config and system instruction', () => {
    const base = cacheEntryId('ana', 'gemini-2.5-flash', request);
    const others = [
      cacheEntryId('bo', 'gemini-2.5-flash', request),
      cacheEntryId(undefined, 'gemini-2.5-flash', request),
      cacheEntryId('ana', 'gemini-2.5-pro', request),
      cacheEntryId('ana', 'gemini-2.5-flash', { ...request, contents: [{ parts: [{ text: 'Another.' }] }] }),
      cacheEntryId('ana', 'gemini-2.5-flash', { ...request, generationConfig: { temperature: 1 } }),
      cacheEntryId('ana', 'gemini-2.5-flash', {
        ...request,
        systemInstruction: { parts: [{ text: 'Be brief.' }] },
      }),
    ];
    for (const other of others) expect(other).not.toBe(base);
    expect(base).toMatch(/^[0-9a-f]{32}_[0-9a-f]{64}$/);
  });
});

describe('the response cache in the worker', () => {
  it("answers the same owner's repeated request without calling Gemini, at no cost, and says so", async () => {
    const { world, run, line } = setup();
    await run('job-a', 'Name a colour.');
    const paid = (await world.lifecycle.view('job-a'))!;

    const reply = await run('job-b', 'Name a colour.');

    expect(reply.body).toEqual({ outcome: 'succeeded' });
    expect(world.gemini.calls).toHaveLength(1);
    const view = (await world.lifecycle.view('job-b'))!;
    expect(view.counts.succeeded).toBe(1);
    expect(view.costUsd).toBe(0);
    expect(view.usage).toEqual({ promptTokens: 0, outputTokens: 0 });
    expect(view.cache).toEqual({ hits: 1, savedUsd: paid.costUsd });
    expect(paid.cache).toBeUndefined();
    const first = await line('job-a');
    expect(await line('job-b')).toEqual({
      ...first,
      metadata: { cached: true, cachedFromJob: 'job-a' },
    });
  });

  it('calls Gemini for another owner, a job with cache: false, or once the entry has expired', async () => {
    const { world, clock, run } = setup();
    await run('job-a', 'Name a colour.');

    await run('job-other', 'Name a colour.', { owner: 'bo@example.com' });
    await run('job-optout', 'Name a colour.', { cache: false });
    clock.ms += 24 * HOUR + 1;
    await run('job-late', 'Name a colour.');

    expect(world.gemini.calls).toHaveLength(4);
    for (const id of ['job-other', 'job-optout', 'job-late'])
      expect((await world.lifecycle.view(id))!.cache).toBeUndefined();
  });

  it('neither reads nor fills the cache for a job with cache: false', async () => {
    const { world, run } = setup();
    await run('job-optout', 'Name a colour.', { cache: false });
    await run('job-b', 'Name a colour.');
    expect(world.gemini.calls).toHaveLength(2);
  });

  it('is off with a TTL of 0', async () => {
    const { world, run } = setup(0);
    await run('job-a', 'Name a colour.');
    await run('job-b', 'Name a colour.');
    expect(world.gemini.calls).toHaveLength(2);
    expect(world.db.responseCache.size).toBe(0);
  });

  it("gives a hit's dispatch slot back to the ledger", async () => {
    const { world, run, quotas } = setup();
    await run('job-a', 'Name a colour.');
    const model = normalizeJobRequest({ prompts: ['x'] }, quotas).model;
    const quota = quotas.models[model]!;
    // job-b's item has a slot on the ledger, as its page's reservation would have placed it.
    const [plannedMs] = await world.db.stores.ledger.reserve(model, [40], quota, quotas.headroom, {});
    const second = String(Math.floor(plannedMs! / 1000));
    const reserved = world.db.ledgers.get(model)!.requests?.[second] ?? 0;

    await run('job-b', 'Name a colour.', {}, plannedMs);

    expect(world.gemini.calls).toHaveLength(1);
    expect(reserved).toBeGreaterThan(0);
    expect(world.db.ledgers.get(model)!.requests?.[second] ?? 0).toBe(reserved - 1);
  });

  it('treats a failed cache read as a miss and a failed cache write as nothing', async () => {
    const { world, run, capture } = setup();
    world.db.failOnce('responseCache.put');
    await run('job-a', 'Name a colour.');
    expect((await world.lifecycle.view('job-a'))!.counts.succeeded).toBe(1);
    await run('job-b', 'Name a colour.');
    world.db.failOnce('responseCache.get');
    await run('job-c', 'Name a colour.');

    expect(world.gemini.calls).toHaveLength(3);
    expect((await world.lifecycle.view('job-c'))!.counts.succeeded).toBe(1);
    expect(capture.events('cache.write_failed')).toHaveLength(1);
    expect(capture.events('cache.read_failed')).toHaveLength(1);
  });

  it('keeps a big answer in the bucket and serves it from there; gone, it is a miss', async () => {
    const { world, run, line } = setup();
    const big = 'x'.repeat(600 * 1024);
    world.gemini.respond = async () => ({
      response: { candidates: [{ content: { role: 'model', parts: [{ text: big }] } }] },
      usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 5 },
    });
    await run('job-a', 'Write a long text.');
    const [entry] = [...world.db.responseCache.values()];
    expect(entry!.responseJson).toBeUndefined();
    expect(entry!.responseObject).toBe(`answers/job-a/${ITEM}.json`);

    await run('job-b', 'Write a long text.');
    expect(world.gemini.calls).toHaveLength(1);
    expect(((await line('job-b')) as { response: unknown }).response).toEqual(
      ((await line('job-a')) as { response: unknown }).response,
    );

    world.objects.objects.delete(`answers/job-a/${ITEM}.json`);
    await run('job-c', 'Write a long text.');
    expect(world.gemini.calls).toHaveLength(2);
  });
});
