import { describe, expect, it } from 'vitest';
import { PLAN_AHEAD_MS, REPLAN_AFTER_MS } from '../../../functions/core/rate.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { GeminiCallError } from '../../../functions/platform/gemini/client.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { MediaError } from '../../../functions/platform/media/index.js';
import { itemTaskId } from '../../../functions/platform/task-queue.js';
import { ENQUEUE_HOLD_MS } from '../../../functions/worker/enqueue-page.js';
import { handleTask, type TaskDelivery, type WorkerDeps } from '../../../functions/worker/handler.js';
import type { FakeDb } from '../../helpers/fake-stores.js';
import { FakeGemini, FakeMediaFetcher, fakeWorld } from '../../helpers/fakes.js';
import { quotaBody } from '../../helpers/gemini-errors.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';
import { TEST_WORKER_BOUNDS } from '../../helpers/worker-world.js';

const JOB = 'job-1';
const NOON_PACIFIC = Date.parse('2024-07-01T19:00:00Z');

interface SetupOptions {
  prompts?: string[];
  body?: Record<string, unknown>;
  callbackUrl?: string;
  clock?: () => number;
  notify?: (url: string, job: unknown) => Promise<void>;
}

async function setup(options: SetupOptions = {}) {
  const quotas = testQuotas();
  const clock = options.clock ?? (() => NOON_PACIFIC);
  const capture = createLogCapture();
  const logger = createLogger({ destination: capture.stream });
  const world = fakeWorld({ quotas, logger, clock, ...(options.notify ? { notify: options.notify } : {}) });
  const store = world.db;
  const gemini = new FakeGemini();
  const media = new FakeMediaFetcher();
  const body = options.body ?? {
    prompts: options.prompts ?? ['What is 2 + 2?'],
    ...(options.callbackUrl ? { callbackUrl: options.callbackUrl } : {}),
  };
  const job = normalizeJobRequest(body, quotas);
  await world.lifecycle.create(
    {
      id: JOB,
      model: job.model,
      mode: 'realtime',
      total: job.items.length,
      source: 'api',
      ...(job.callbackUrl ? { callbackUrl: job.callbackUrl } : {}),
    },
    job.items,
  );
  const deps: WorkerDeps = {
    lifecycle: world.lifecycle,
    planner: world.planner,
    gemini,
    tasks: world.tasks,
    media,
    quotas,
    logger,
    ...TEST_WORKER_BOUNDS,
    now: clock,
  };
  return {
    store,
    gemini,
    tasks: world.tasks,
    objects: world.objects,
    media,
    capture,
    sent: world.sent,
    deps,
    quotas,
  };
}

function itemDelivery(itemId: string, retryCount = 0, plannedMs?: number): TaskDelivery {
  return {
    queueName: 'projects/fanout-local/locations/us-central1/queues/fanout-gemini-2-5-flash',
    taskName: `projects/fanout-local/locations/us-central1/queues/fanout-gemini-2-5-flash/tasks/${itemTaskId(JOB, itemId)}`,
    retryCount,
    executionCount: retryCount,
    payload: { kind: 'item', jobId: JOB, itemId, ...(plannedMs === undefined ? {} : { plannedMs }) },
  };
}

function enqueueDelivery(from = 0): TaskDelivery {
  return {
    queueName: 'projects/fanout-local/locations/us-central1/queues/fanout-control',
    taskName: `projects/fanout-local/locations/us-central1/queues/fanout-control/tasks/${JOB}-enqueue-${from}`,
    retryCount: 0,
    executionCount: 0,
    payload: { kind: 'enqueue', jobId: JOB, from },
  };
}

const ITEM = '000000000';

/** Gemini's 429 for a per-minute or per-day quota, as the SDK's ApiError carries it. */
function quotaError(quotaId: string, retryDelay: string): GeminiCallError {
  return new GeminiCallError('Gemini answered 429', 429, quotaBody(quotaId, retryDelay));
}

const overloaded = () =>
  new GeminiCallError('Gemini answered 500', 500, {
    error: { code: 500, status: 'INTERNAL', message: 'An internal error has occurred. Please retry.' },
  });

const badRequest = () =>
  new GeminiCallError('Gemini answered 400', 400, {
    error: {
      code: 400,
      status: 'INVALID_ARGUMENT',
      message: '* GenerateContentRequest.contents: contents is not specified',
    },
  });

describe('handleTask: an item that succeeds', () => {
  it('records the response, finishes the job and notifies the callback', async () => {
    const { store, gemini, sent, deps } = await setup({ callbackUrl: 'https://example.com/hook' });

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'succeeded' } });
    expect(gemini.calls).toEqual([
      {
        model: 'gemini-2.5-flash',
        request: { contents: [{ role: 'user', parts: [{ text: 'What is 2 + 2?' }] }] },
      },
    ]);
    const item = store.item(JOB, ITEM);
    expect(item?.state).toBe('succeeded');
    expect(item?.response).toMatchObject({ candidates: [{ content: { parts: [{ text: 'an answer' }] } }] });
    expect(item?.usage).toEqual({ promptTokens: 12, outputTokens: 5 });
    expect(item?.costUsd).toBeCloseTo((12 * 0.3 + 5 * 2.5) / 1e6, 12);
    // Gemini's count against the estimate (14 bytes: 4 tokens) is evidence for the token plan.
    expect(store.evidence.get(JOB)).toMatchObject({ items: 1, estimated: 4, counted: 12 });
    expect(store.jobs.get(JOB)?.status).toBe('succeeded');
    expect(sent).toHaveLength(1);
    expect(sent[0]?.url).toBe('https://example.com/hook');
    expect(sent[0]?.job.counts).toMatchObject({ total: 1, succeeded: 1, failed: 0, pending: 0 });
  });

  it.each([
    [
      'a blocked prompt (no candidates, promptFeedback.blockReason)',
      {
        promptFeedback: { blockReason: 'SAFETY' },
        usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 },
      },
      { promptTokens: 9, outputTokens: 0 },
    ],
    [
      'a candidate without parts (thinking ate maxOutputTokens)',
      {
        candidates: [{ content: { role: 'model' }, finishReason: 'MAX_TOKENS' }],
        usageMetadata: { promptTokenCount: 9, thoughtsTokenCount: 64, totalTokenCount: 73 },
      },
      { promptTokens: 9, outputTokens: 64 },
    ],
    [
      'a SAFETY stop with cached input and thinking',
      {
        candidates: [{ finishReason: 'SAFETY' }],
        usageMetadata: {
          promptTokenCount: 1000,
          cachedContentTokenCount: 800,
          candidatesTokenCount: 10,
          thoughtsTokenCount: 90,
          promptTokensDetails: [{ modality: 'TEXT', tokenCount: 1000 }],
        },
      },
      { promptTokens: 1000, outputTokens: 100, cachedTokens: 800 },
    ],
  ])('keeps %s as the item’s response, priced from its usage', async (_name, response, usage) => {
    const { store, gemini, deps } = await setup();
    gemini.respond = async () => ({ response, usageMetadata: response.usageMetadata });

    expect(await handleTask(itemDelivery(ITEM), deps)).toEqual({
      status: 200,
      body: { outcome: 'succeeded' },
    });

    const item = store.item(JOB, ITEM);
    expect(item?.state).toBe('succeeded');
    expect(item?.response).toEqual(response);
    expect(item?.usage).toEqual(usage);
    const cached = 'cachedTokens' in usage ? (usage.cachedTokens as number) : 0;
    const expected = ((usage.promptTokens - cached) * 0.3 + cached * 0.03 + usage.outputTokens * 2.5) / 1e6;
    expect(item?.costUsd).toBeCloseTo(expected, 12);
  });

  it('leaves the job running while other items are pending', async () => {
    const { store, sent, deps } = await setup({
      prompts: ['a', 'b'],
      callbackUrl: 'https://example.com/hook',
    });

    await handleTask(itemDelivery('000000000'), deps);

    expect(store.jobs.get(JOB)?.status).toBe('running');
    expect(sent).toEqual([]);
  });

  it('writes once, finishes once and notifies once when the task comes twice in a row', async () => {
    const { store, gemini, sent, deps } = await setup({ callbackUrl: 'https://example.com/hook' });

    const first = await handleTask(itemDelivery(ITEM), deps);
    const second = await handleTask(itemDelivery(ITEM), deps);

    expect(first.body.outcome).toBe('succeeded');
    expect(second).toEqual({ status: 200, body: { outcome: 'duplicate' } });
    expect(gemini.calls).toHaveLength(1);
    expect(store.completedWrites).toBe(1);
    expect(store.finishedJobs).toBe(1);
    expect(sent).toHaveLength(1);
  });

  it('writes once, finishes once and notifies once when the task comes twice at the same time', async () => {
    const { store, gemini, sent, deps } = await setup({ callbackUrl: 'https://example.com/hook' });

    const replies = await Promise.all([
      handleTask(itemDelivery(ITEM), deps),
      handleTask(itemDelivery(ITEM), deps),
    ]);

    expect(replies.map((r) => r.body.outcome).sort()).toEqual(['leased', 'succeeded']);
    expect(replies.find((r) => r.body.outcome === 'leased')?.status).toBe(500);
    expect(gemini.calls).toHaveLength(1);
    expect(store.completedWrites).toBe(1);
    expect(store.finishedJobs).toBe(1);
    expect(sent).toHaveLength(1);
  });

  it('finishes the job once when its last two items finish at the same time', async () => {
    const { store, gemini, sent, deps } = await setup({
      prompts: ['a', 'b', 'c'],
      callbackUrl: 'https://example.com/hook',
    });
    await handleTask(itemDelivery('000000000'), deps);

    await Promise.all([
      handleTask(itemDelivery('000000001'), deps),
      handleTask(itemDelivery('000000002'), deps),
    ]);

    expect(gemini.calls).toHaveLength(3);
    expect(store.finishedJobs).toBe(1);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.job.counts.succeeded).toBe(3);
  });

  it('answers a duplicate of a finished item with 200 without calling Gemini', async () => {
    const { store, gemini, deps } = await setup({ prompts: ['a', 'b'] });
    store.settle(JOB, ITEM, {
      state: 'failed',
      error: { code: 400, status: 'INVALID_ARGUMENT', message: 'x' },
    });

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'duplicate' } });
    expect(gemini.calls).toEqual([]);
  });

  it('still finishes the job when the delivery that wrote the last outcome crashed before finishing it', async () => {
    // The outcome is written, then finishing the job fails (a Firestore blip or an instance that dies):
    // Cloud Tasks delivers the task again, and that delivery must complete the job.
    const { store, gemini, sent, deps } = await setup({ callbackUrl: 'https://example.com/hook' });
    store.failOnce('jobs.finish', new Error('13 INTERNAL: transaction aborted'));

    await expect(handleTask(itemDelivery(ITEM), deps)).rejects.toThrow(/transaction aborted/);
    const retried = await handleTask(itemDelivery(ITEM, 1), deps);

    expect(retried.status).toBe(200);
    expect(gemini.calls).toHaveLength(1);
    expect(store.item(JOB, ITEM)?.state).toBe('succeeded');
    expect(store.jobs.get(JOB)?.status).toBe('succeeded');
    expect(sent).toHaveLength(1);
  });

  it('answers 200 and logs when the callback fails', async () => {
    const { capture, deps } = await setup({
      callbackUrl: 'https://example.com/hook',
      notify: async () => {
        throw new Error('callback answered 502');
      },
    });

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply.status).toBe(200);
    expect(capture.events('job.callback_failed')).toEqual([
      expect.objectContaining({ severity: 'ERROR', err: 'callback answered 502', jobId: JOB }),
    ]);
  });

  it('logs the outcome with job and item ids', async () => {
    const { capture, deps } = await setup();

    await handleTask(itemDelivery(ITEM), deps);

    expect(capture.events('item.succeeded')).toEqual([
      expect.objectContaining({ severity: 'INFO', jobId: JOB, itemId: ITEM, attempt: 1, written: true }),
    ]);
    expect(JSON.stringify(capture.lines())).not.toContain('What is 2 + 2?');
  });
});

describe('handleTask: Gemini failures', () => {
  it('on a per-minute 429 hands the item to a new task after the delay Gemini asked for, not a 429 that throttles the queue', async () => {
    const { store, gemini, tasks, deps } = await setup();
    gemini.failWith(quotaError('GenerateRequestsPerMinutePerProjectPerModel', '12s'));

    const reply = await handleTask(itemDelivery(ITEM, 0, NOON_PACIFIC - 1000), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'handed-over' } });
    expect(store.item(JOB, ITEM)).toMatchObject({ state: 'pending', lease: null });
    // The new task keeps the item's plan (a delivery later than it takes a fresh slot) and is due after the delay.
    const handed = [...tasks.itemTasks.values()].filter((t) => t.itemId === ITEM && t.handover !== undefined);
    expect(handed).toEqual([
      expect.objectContaining({ plannedMs: NOON_PACIFIC - 1000, scheduleMs: NOON_PACIFIC + 12_000 }),
    ]);
    expect(store.jobs.get(JOB)?.status).toBe('running');
  });

  it('logs which limit a 429 hit: the quotaId and its kind', async () => {
    const { capture, gemini, deps } = await setup();
    gemini.failWith(quotaError('GenerateContentPaidTierInputTokensPerModelPerMinute', '31s'));

    await handleTask(itemDelivery(ITEM, 0, NOON_PACIFIC - 1000), deps);

    expect(capture.events('gemini.quota-minute')).toEqual([
      expect.objectContaining({
        severity: 'WARNING',
        httpStatus: 429,
        quotaId: 'GenerateContentPaidTierInputTokensPerModelPerMinute',
        limit: 'tokens-per-minute',
      }),
    ]);
  });

  it("lowers the model's planned token rate for a while on a per-minute TPM 429, not on an RPM one", async () => {
    const { store, gemini, deps } = await setup();
    gemini.failWith(quotaError('GenerateRequestsPerMinutePerProjectPerModel', '12s'));
    await handleTask(itemDelivery(ITEM, 0, NOON_PACIFIC - 1000), deps);
    const afterRpm = store.ledgers.get('gemini-2.5-flash')?.tokenCut;
    gemini.failWith(quotaError('GenerateContentPaidTierInputTokensPerModelPerMinute', '31s'));

    await handleTask(itemDelivery(ITEM, 0, NOON_PACIFIC - 1000), deps);

    expect(afterRpm).toBeUndefined();
    expect(store.ledgers.get('gemini-2.5-flash')?.tokenCut).toMatchObject({ factor: 0.8 });
  });

  it('counts each 429 in the job view by model and quotaId', async () => {
    const { gemini, deps } = await setup();
    gemini.failWith(quotaError('GenerateRequestsPerMinutePerProjectPerModel', '12s'));
    await handleTask(itemDelivery(ITEM, 0, NOON_PACIFIC - 1000), deps);
    gemini.failWith(quotaError('GenerateContentPaidTierInputTokensPerModelPerMinute', '31s'));
    await handleTask(itemDelivery(ITEM, 0, NOON_PACIFIC - 1000), deps);

    const view = await deps.lifecycle.view(JOB);

    expect(view?.quota429s).toEqual({
      'gemini-2.5-flash': {
        GenerateRequestsPerMinutePerProjectPerModel: 1,
        GenerateContentPaidTierInputTokensPerModelPerMinute: 1,
      },
    });
  });

  it('runs the item when its new task comes after a per-minute 429', async () => {
    const { gemini, deps } = await setup();
    gemini.failWith(quotaError('GenerateRequestsPerMinutePerProjectPerModel', '12s'));
    await handleTask(itemDelivery(ITEM, 0, NOON_PACIFIC - 1000), deps);
    gemini.respond = new FakeGemini().respond;

    const reply = await handleTask(itemDelivery(ITEM, 0, NOON_PACIFIC - 1000), deps);

    expect(reply.body.outcome).toBe('succeeded');
    expect(gemini.calls).toHaveLength(2);
  });

  it('fails the item on a per-minute 429 once it has used up its attempts across tasks', async () => {
    const { store, gemini, deps } = await setup();
    gemini.failWith(quotaError('GenerateRequestsPerMinutePerProjectPerModel', '12s'));
    store.items.get(JOB)!.get(ITEM)!.attempts = deps.quotas.queue.maxAttempts;

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'failed' } });
    expect(store.item(JOB, ITEM)?.error).toMatchObject({ code: 429, status: 'RESOURCE_EXHAUSTED' });
  });

  it('on a per-day 429 pauses the queue, stores the pause, tells the job, and answers 503', async () => {
    const { store, gemini, tasks, capture, deps } = await setup();
    gemini.failWith(quotaError('GenerateRequestsPerDayPerProjectPerModel', '30s'));

    const reply = await handleTask(itemDelivery(ITEM), deps);

    const twelveHours = 12 * 3600;
    expect(reply).toEqual({ status: 503, retryAfterSeconds: twelveHours, body: { outcome: 'quota-day' } });
    expect(tasks.pauseCalls).toEqual(['gemini-2.5-flash']);
    expect(store.pauses.get('gemini-2.5-flash')?.untilMs).toBe(NOON_PACIFIC + twelveHours * 1000);
    expect(store.pauses.get('gemini-2.5-flash')?.reason).toMatch(/exceeded your current quota/);
    expect(store.jobs.get(JOB)?.notice).toMatch(/daily request quota of gemini-2\.5-flash/);
    expect(store.jobs.get(JOB)?.notice).toContain('2024-07-02T07:00:00.000Z');
    expect(store.item(JOB, ITEM)?.state).toBe('pending');
    expect(capture.events('quota.daily_exhausted')).toEqual([
      expect.objectContaining({ severity: 'WARNING' }),
    ]);
  });

  it('still answers 503 and logs when pausing the queue fails on a per-day 429', async () => {
    const { gemini, tasks, capture, deps } = await setup();
    gemini.failWith(quotaError('GenerateRequestsPerDayPerProjectPerModel', '30s'));
    tasks.pauseModel = async () => {
      throw new Error('7 PERMISSION_DENIED');
    };

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply.status).toBe(503);
    expect(capture.events('queue.pause_failed')).toHaveLength(1);
  });

  it('answers 500 on a transient fault, leaving the item pending', async () => {
    const { store, gemini, deps } = await setup();
    gemini.failWith(overloaded());

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply).toEqual({ status: 500, body: { outcome: 'transient' } });
    expect(store.item(JOB, ITEM)?.state).toBe('pending');
  });

  it('answers 500 on a timeout (no HTTP status)', async () => {
    const { store, gemini, deps } = await setup();
    gemini.failWith(new GeminiCallError('Gemini did not answer in time', undefined, undefined));

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply.status).toBe(500);
    expect(store.item(JOB, ITEM)?.state).toBe('pending');
  });

  it('records a transient fault on the last attempt instead of losing the item', async () => {
    const { store, gemini, sent, quotas, deps } = await setup({ callbackUrl: 'https://example.com/hook' });
    gemini.failWith(overloaded());

    const reply = await handleTask(itemDelivery(ITEM, quotas.queue.maxAttempts - 1), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'failed' } });
    expect(store.item(JOB, ITEM)?.error).toEqual({
      code: 500,
      status: 'INTERNAL',
      message: 'An internal error has occurred. Please retry.',
    });
    expect(store.jobs.get(JOB)?.status).toBe('succeeded');
    expect(sent[0]?.job.counts).toMatchObject({ succeeded: 0, failed: 1 });
  });

  it('still retries a transient fault on the attempt before the last', async () => {
    const { store, gemini, quotas, deps } = await setup();
    gemini.failWith(overloaded());

    const reply = await handleTask(itemDelivery(ITEM, quotas.queue.maxAttempts - 2), deps);

    expect(reply.status).toBe(500);
    expect(store.item(JOB, ITEM)?.state).toBe('pending');
  });

  it('records a per-minute 429 on the last attempt', async () => {
    const { store, gemini, quotas, deps } = await setup();
    gemini.failWith(quotaError('GenerateRequestsPerMinutePerProjectPerModel', '12s'));

    const reply = await handleTask(itemDelivery(ITEM, quotas.queue.maxAttempts - 1), deps);

    expect(reply.status).toBe(200);
    expect(store.item(JOB, ITEM)?.error).toMatchObject({ code: 429, status: 'RESOURCE_EXHAUSTED' });
  });

  it('records a 400 as a permanent failure at once, with the status and message Gemini gave', async () => {
    const { store, gemini, deps } = await setup();
    gemini.failWith(badRequest());

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'failed' } });
    expect(gemini.calls).toHaveLength(1);
    expect(store.item(JOB, ITEM)?.error).toEqual({
      code: 400,
      status: 'INVALID_ARGUMENT',
      message: '* GenerateContentRequest.contents: contents is not specified',
    });
    expect(store.jobs.get(JOB)?.status).toBe('succeeded');
  });
});

describe('handleTask: items that do not run', () => {
  it('records the item of a cancelled job as cancelled without calling Gemini', async () => {
    const { store, gemini, deps } = await setup({ prompts: ['a', 'b'] });
    store.jobs.get(JOB)!.status = 'cancelled';

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'cancelled' } });
    expect(gemini.calls).toEqual([]);
    expect(store.item(JOB, ITEM)?.state).toBe('cancelled');
    expect(store.item(JOB, ITEM)?.error).toMatchObject({ code: 499, status: 'CANCELLED' });
  });

  it('answers 500 (not 503: no system throttling) with retry-after while another delivery holds the item, at most 10 s', async () => {
    const { store, gemini, deps } = await setup();
    store.lease(JOB, ITEM, NOON_PACIFIC + 42_500);

    const reply = await handleTask(itemDelivery(ITEM), deps);
    store.lease(JOB, ITEM, NOON_PACIFIC + 3_500);
    const short = await handleTask(itemDelivery(ITEM), deps);

    expect(reply).toEqual({ status: 500, retryAfterSeconds: 10, body: { outcome: 'leased' } });
    expect(short).toEqual({ status: 500, retryAfterSeconds: 4, body: { outcome: 'leased' } });
    expect(gemini.calls).toEqual([]);
  });

  it('runs an item whose lease has run out (its delivery crashed)', async () => {
    const { store, deps } = await setup();
    store.lease(JOB, ITEM, NOON_PACIFIC - 1);

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply.body.outcome).toBe('succeeded');
  });

  it('drops a task for an unknown item with 200', async () => {
    const { gemini, deps } = await setup();

    const reply = await handleTask(itemDelivery('000000099'), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'missing' } });
    expect(gemini.calls).toEqual([]);
  });
});

describe('handleTask: a delivery far behind its plan', () => {
  /** Fills the model's ledger for the next minute, as a big job planned just before would. */
  async function fillLedger(store: FakeDb, quotas: WorkerDeps['quotas']) {
    const quota = quotas.models['gemini-2.5-flash']!;
    await store.stores.ledger.reserve(
      'gemini-2.5-flash',
      [quota.tpm * quotas.headroom],
      quota,
      quotas.headroom,
    );
  }

  it('runs at once a delivery within the slack of its plan', async () => {
    const { gemini, deps } = await setup();

    const reply = await handleTask(itemDelivery(ITEM, 0, NOON_PACIFIC - REPLAN_AFTER_MS + 500), deps);

    expect(reply.body.outcome).toBe('succeeded');
    expect(gemini.calls).toHaveLength(1);
  });

  it('runs a late delivery at once, without touching the ledger, when the ledger is light', async () => {
    const { store, gemini, deps } = await setup();

    const reply = await handleTask(itemDelivery(ITEM, 2, NOON_PACIFIC - 30_000), deps);

    expect(reply.body.outcome).toBe('succeeded');
    expect(gemini.calls).toHaveLength(1);
    expect(store.ledgers.get('gemini-2.5-flash')).toBeUndefined();
  });

  it('gives a late delivery a slot in this second when a busy ledger still has room now', async () => {
    // Arrange: the minute is busy (a big send 20 s ago), the last seconds are not.
    const { store, gemini, deps, quotas } = await setup();
    const quota = quotas.models['gemini-2.5-flash']!;
    const before = String(NOON_PACIFIC / 1000 - 20);
    store.ledgers.set('gemini-2.5-flash', {
      buckets: { [before]: 0.6 * quota.tpm },
      requests: { [before]: 1 },
    });

    const reply = await handleTask(itemDelivery(ITEM, 2, NOON_PACIFIC - 30_000), deps);

    expect(reply.body.outcome).toBe('succeeded');
    expect(gemini.calls).toHaveLength(1);
    expect(store.ledgers.get('gemini-2.5-flash')?.requests?.[String(NOON_PACIFIC / 1000)]).toBe(1);
  });

  it('plans a late item again when the minute is full: a new task at the new slot, no Gemini call', async () => {
    const { store, gemini, tasks, deps, quotas } = await setup();
    await fillLedger(store, quotas);

    const reply = await handleTask(itemDelivery(ITEM, 0, NOON_PACIFIC - 30_000), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'replanned' } });
    expect(gemini.calls).toHaveLength(0);
    const item = store.item(JOB, ITEM)!;
    expect(item.state).toBe('pending');
    expect(item.lease).toBeNull();
    expect(item.plannedMs).toBeGreaterThan(NOON_PACIFIC + 60_000);
    const replanned = [...tasks.itemTasks.entries()].filter(([name]) => name.includes('-p'));
    expect(replanned).toHaveLength(1);
    expect(replanned[0]![0]).toBe(`${itemTaskId(JOB, ITEM)}-p${item.plannedMs! / 1000}`);
    expect(replanned[0]![1].plannedMs).toBe(item.plannedMs);
  });

  it('runs the new task at its slot, and ends deliveries of the old one without calling Gemini', async () => {
    let now = NOON_PACIFIC;
    const { store, gemini, deps, quotas } = await setup({ clock: () => now });
    await fillLedger(store, quotas);
    await handleTask(itemDelivery(ITEM, 0, NOON_PACIFIC - 30_000), deps);
    const slotMs = store.item(JOB, ITEM)!.plannedMs!;

    const old = await handleTask(itemDelivery(ITEM, 0, NOON_PACIFIC - 30_000), deps);
    now = slotMs + 200;
    const fresh = await handleTask(itemDelivery(ITEM, 0, slotMs), deps);

    expect(old).toEqual({ status: 200, body: { outcome: 'superseded' } });
    expect(fresh.body.outcome).toBe('succeeded');
    expect(gemini.calls).toHaveLength(1);
    expect(store.item(JOB, ITEM)?.state).toBe('succeeded');
  });

  it('gives back the slot of a first attempt it plans again, but keeps that of a retry (it reached Gemini)', async () => {
    const plannedAt = async () => {
      let now = NOON_PACIFIC - 30_000;
      const run = await setup({ clock: () => now });
      const quota = run.quotas.models['gemini-2.5-flash']!;
      const tokens = run.store.item(JOB, ITEM)!.estimatedTokens;
      // As the enqueue did: the item's slot now, then a big job filling the next minute.
      const [plannedMs] = await run.store.stores.ledger.reserve('gemini-2.5-flash', [tokens], quota, 0.98);
      await fillLedger(run.store, run.quotas);
      now = NOON_PACIFIC;
      const tokensAtOldSlot = () =>
        run.store.ledgers.get('gemini-2.5-flash')?.buckets[String(Math.floor(plannedMs! / 1000))] ?? 0;
      return { ...run, plannedMs: plannedMs!, tokens, tokensAtOldSlot };
    };
    const first = await plannedAt();
    const retry = await plannedAt();

    const firstReply = await handleTask(itemDelivery(ITEM, 0, first.plannedMs), first.deps);
    const retryReply = await handleTask(itemDelivery(ITEM, 1, retry.plannedMs), retry.deps);

    expect([firstReply.body.outcome, retryReply.body.outcome]).toEqual(['replanned', 'replanned']);
    expect(first.tokensAtOldSlot()).toBe(0);
    expect(retry.tokensAtOldSlot()).toBe(retry.tokens);
  });

  it('still calls Gemini on the last attempt, however late', async () => {
    const { store, gemini, deps, quotas } = await setup();
    await fillLedger(store, quotas);

    const reply = await handleTask(
      itemDelivery(ITEM, quotas.queue.maxAttempts - 1, NOON_PACIFIC - 30_000),
      deps,
    );

    expect(reply.body.outcome).toBe('succeeded');
    expect(gemini.calls).toHaveLength(1);
  });
});

describe('handleTask: media', () => {
  const mediaBody = {
    requests: [{ key: 'cat', prompt: 'What animal is this?', media: [{ gcsUri: 'gs://photos/cat.png' }] }],
  };

  it('sends the fetched media to Gemini', async () => {
    const { store, gemini, media, deps } = await setup({ body: mediaBody });

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply.body.outcome).toBe('succeeded');
    // Its estimate of the media is a default: no evidence of the estimator.
    expect(store.evidence.get(JOB)).toBeUndefined();
    expect(media.calls).toEqual([[{ gcsUri: 'gs://photos/cat.png' }]]);
    expect(gemini.calls[0]?.request.contents[0]?.parts).toEqual([
      { text: 'What animal is this?' },
      { inlineData: { mimeType: 'image/png', data: 'AAAA' } },
    ]);
  });

  it('records a permanent media problem without calling Gemini', async () => {
    const { store, gemini, media, deps } = await setup({ body: mediaBody });
    media.error = new MediaError('gs://photos/cat.png: No such object');

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply.status).toBe(200);
    expect(gemini.calls).toEqual([]);
    expect(store.item(JOB, ITEM)?.error).toEqual({
      code: 400,
      status: 'INVALID_ARGUMENT',
      message: 'media: gs://photos/cat.png: No such object',
    });
  });

  it('retries a transient media problem, and records it on the last attempt', async () => {
    const { store, media, quotas, deps } = await setup({ body: mediaBody });
    media.error = new MediaError('gs://photos/cat.png: Service unavailable', false);

    const early = await handleTask(itemDelivery(ITEM), deps);
    const stateAfterEarly = store.item(JOB, ITEM)?.state;
    const last = await handleTask(itemDelivery(ITEM, quotas.queue.maxAttempts - 1), deps);

    expect(early.status).toBe(500);
    expect(stateAfterEarly).toBe('pending');
    expect(last.status).toBe(200);
    expect(store.item(JOB, ITEM)?.state).toBe('failed');
  });
});

describe('handleTask: enqueue', () => {
  /** 1,200 prompts of about 1,000 tokens: 1.2M tokens, more than a minute of a 1M TPM model. */
  const bigPrompts = () => Array.from({ length: 1200 }, (_, i) => `${i} ${'x'.repeat(4000)}`);

  it('creates a task per item, page by page, with its TPM schedule time, and records progress', async () => {
    const { store, tasks, deps } = await setup({ prompts: bigPrompts() });

    const reply = await handleTask(enqueueDelivery(), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'enqueued', detail: '1200' } });
    expect(tasks.enqueueItemsCalls).toBe(3);
    expect(tasks.itemTasks.size).toBe(1200);
    expect(store.jobs.get(JOB)?.enqueuedThrough).toBe(1200);
    const byIndex = [...tasks.itemTasks.values()].sort((a, b) => a.index - b.index);
    expect(byIndex.map((t) => t.itemId)).toEqual(
      Array.from({ length: 1200 }, (_, i) => String(i).padStart(9, '0')),
    );
    expect(byIndex.every((t) => t.model === 'gemini-2.5-flash' && t.jobId === JOB)).toBe(true);
    const times = byIndex.map((t) => t.plannedMs ?? 0);
    expect(times[0]).toBe(NOON_PACIFIC);
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]!);
    expect(times.at(-1)!).toBeGreaterThan(NOON_PACIFIC + 60_000);
  });

  it('plans no further ahead than PLAN_AHEAD_MS, and a control task plans the rest later', async () => {
    // gemini-2.5-pro at 150 RPM sends about 2.4 a second: 2,000 prompts are some 14 minutes of plan.
    let now = NOON_PACIFIC;
    const { store, tasks, deps } = await setup({
      body: { model: 'gemini-2.5-pro', prompts: Array.from({ length: 2000 }, (_, i) => `p${i}`) },
      clock: () => now,
    });

    const first = await handleTask(enqueueDelivery(), deps);
    const plannedFirst = tasks.itemTasks.size;
    const [name, payload] = [...tasks.controlTasks].find(([, p]) => p.kind === 'enqueue')!;
    const lastPlanned = Math.max(...[...tasks.itemTasks.values()].map((t) => t.plannedMs!));
    now = tasks.controlSchedule.get(name)!;
    const second = await handleTask({ ...enqueueDelivery(), payload }, deps);

    expect(first.body.outcome).toBe('paced');
    expect(lastPlanned - NOON_PACIFIC).toBeLessThan(PLAN_AHEAD_MS + 1000);
    expect(plannedFirst).toBeGreaterThan(1000);
    expect(plannedFirst).toBeLessThan(2000);
    expect(store.jobs.get(JOB)?.enqueuedThrough).toBe(2000);
    expect(payload).toEqual({ kind: 'enqueue', jobId: JOB, from: plannedFirst });
    expect(tasks.controlSchedule.get(name)).toBe(lastPlanned - PLAN_AHEAD_MS / 2);
    expect(second.body.outcome).toBe('enqueued');
    expect(tasks.itemTasks.size).toBe(2000);
    const times = [...tasks.itemTasks.values()].sort((a, b) => a.index - b.index).map((t) => t.plannedMs!);
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]!);
  });

  it('leaves a job another delivery is enqueuing to it until its hold runs out, then takes over', async () => {
    let now = NOON_PACIFIC;
    const { store, tasks, deps } = await setup({ clock: () => now });
    await store.stores.jobs.holdEnqueue(JOB, 'another delivery', now, now + ENQUEUE_HOLD_MS);

    const held = await handleTask(enqueueDelivery(), deps);
    const createdWhileHeld = tasks.itemTasks.size;
    now += ENQUEUE_HOLD_MS + 1;
    const retry = await handleTask(enqueueDelivery(), deps);

    expect(held).toMatchObject({ status: 500, body: { outcome: 'held' } });
    expect(createdWhileHeld).toBe(0);
    expect(retry.body.outcome).toBe('enqueued');
    expect(tasks.itemTasks.size).toBe(store.jobs.get(JOB)?.total);
    // Given up once done: a later run of the job's enqueuing is not held.
    expect(await store.stores.jobs.holdEnqueue(JOB, 'a later one', now, now + 1)).toBe(true);
  });

  it('resumes after a crash mid-way without losing or doubling items', async () => {
    const { store, tasks, deps } = await setup({ prompts: bigPrompts() });
    tasks.crashOnEnqueueCall = 2;

    await expect(handleTask(enqueueDelivery(), deps)).rejects.toThrow(/UNAVAILABLE/);
    const progressAfterCrash = store.jobs.get(JOB)?.enqueuedThrough;
    const reply = await handleTask(enqueueDelivery(), deps);

    expect(progressAfterCrash).toBe(500);
    expect(reply.body).toEqual({ outcome: 'enqueued', detail: '1200' });
    expect(tasks.itemTasks.size).toBe(1200);
    const indexes = new Set([...tasks.itemTasks.values()].map((t) => t.index));
    expect(indexes.size).toBe(1200);
    expect(store.jobs.get(JOB)?.enqueuedThrough).toBe(1200);
  });

  it('hands over to a fresh control task when its time budget is spent', async () => {
    const { tasks, deps } = await setup({ prompts: bigPrompts() });
    let ticks = 0;
    deps.now = () => NOON_PACIFIC + 1000 * ticks++;
    deps.enqueueBudgetMs = 1500;

    const reply = await handleTask(enqueueDelivery(), deps);

    expect(reply.body).toEqual({ outcome: 'handover', detail: '500' });
    expect(tasks.itemTasks.size).toBe(500);
    expect(tasks.controlTasks.get(`${JOB}-enqueue-500`)).toEqual({ kind: 'enqueue', jobId: JOB, from: 500 });
  });

  it('creates no tasks for items that already ended, nor for a cancelled job', async () => {
    const { store, tasks, deps } = await setup({ prompts: ['a', 'b', 'c'] });
    store.settle(JOB, '000000001', {
      state: 'failed',
      error: { code: 499, status: 'CANCELLED', message: 'The job was cancelled.' },
    });

    await handleTask(enqueueDelivery(), deps);
    store.jobs.get(JOB)!.status = 'cancelled';
    store.jobs.get(JOB)!.enqueuedThrough = 0;
    const terminal = await handleTask(enqueueDelivery(), deps);

    expect([...tasks.itemTasks.values()].map((t) => t.itemId).sort()).toEqual(['000000000', '000000002']);
    expect(terminal.body.outcome).toBe('terminal');
    expect(tasks.enqueueItemsCalls).toBe(1);
  });
});

describe('handleTask: nothing is lost on the last attempt', () => {
  it('hands a leased item to a new task due when the lease ends, instead of letting the task be deleted', async () => {
    const { store, tasks, gemini, quotas, capture, deps } = await setup();
    const leaseEnd = NOON_PACIFIC + 42_500;
    store.lease(JOB, ITEM, leaseEnd);

    const reply = await handleTask(itemDelivery(ITEM, quotas.queue.maxAttempts - 1), deps);

    const handover = `${itemTaskId(JOB, ITEM)}-h${Math.floor((leaseEnd + 1000) / 1000)}`;
    expect(reply).toEqual({ status: 200, body: { outcome: 'handed-over' } });
    expect(tasks.itemTasks.get(handover)).toMatchObject({ itemId: ITEM, plannedMs: leaseEnd + 1000 });
    expect(gemini.calls).toEqual([]);
    expect(capture.events('item.handed_over')).toHaveLength(1);
  });

  it('hands the item to a new task on its queue when the store fails the last attempt before the claim', async () => {
    const { store, tasks, gemini, quotas, capture, deps } = await setup();
    store.failOnce('items.getWithJob', new Error('14 UNAVAILABLE: Firestore is unreachable'));
    const delivery = itemDelivery(ITEM, quotas.queue.maxAttempts - 1);

    const reply = await handleTask(delivery, deps);

    const dueSecond = Math.floor((NOON_PACIFIC + 60_000) / 1000);
    expect(reply).toEqual({ status: 200, body: { outcome: 'handed-over' } });
    expect(tasks.itemTasks.get(`${itemTaskId(JOB, ITEM)}-h${dueSecond}`)).toMatchObject({
      model: delivery.queueName,
      itemId: ITEM,
      plannedMs: NOON_PACIFIC + 60_000,
    });
    expect(gemini.calls).toEqual([]);
    expect(capture.events('item.handed_over')).toEqual([expect.objectContaining({ severity: 'ERROR' })]);
  });

  it('lets a store failure before the claim go up (500) before the last attempt', async () => {
    const { store, tasks, deps } = await setup();
    store.failOnce('items.getWithJob', new Error('14 UNAVAILABLE: Firestore is unreachable'));

    await expect(handleTask(itemDelivery(ITEM), deps)).rejects.toThrow(/UNAVAILABLE/);
    expect(tasks.itemTasks.size).toBe(0);
  });

  it('records the paid answer, not a failure, when its outcome write fails four times on the last attempt', async () => {
    const { store, gemini, quotas, deps } = await setup();
    for (let i = 0; i < 4; i++) store.failOnce('items.settle', new Error('14 UNAVAILABLE: connection reset'));

    const reply = await handleTask(itemDelivery(ITEM, quotas.queue.maxAttempts - 1), deps);

    // Once Gemini has answered, the write is retried for the rest of the lease (issue 17, scenario 6).
    expect(reply).toEqual({ status: 200, body: { outcome: 'succeeded' } });
    expect(gemini.calls).toHaveLength(1);
    expect(store.item(JOB, ITEM)?.state).toBe('succeeded');
  });

  it('records a failure when its own fault persists on the last attempt', async () => {
    const { store, gemini, quotas, deps } = await setup();
    gemini.failWith(quotaError('GenerateRequestsPerDayPerProjectPerModel', '30s'));
    store.failOnce('pauses.set', new Error('14 UNAVAILABLE: connection reset'));

    const reply = await handleTask(itemDelivery(ITEM, quotas.queue.maxAttempts - 1), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'failed' } });
    expect(store.item(JOB, ITEM)).toMatchObject({
      state: 'failed',
      error: { code: 500, status: 'INTERNAL' },
    });
    expect(store.item(JOB, ITEM)?.error?.message).toMatch(/last attempt: 14 UNAVAILABLE/);
  });

  it('gives the lease back when it fails with an error before the last attempt, so the retry runs at once', async () => {
    const { store, gemini, quotas, deps } = await setup();
    const answer = gemini.respond;
    gemini.failWith(quotaError('GenerateRequestsPerDayPerProjectPerModel', '30s'));
    store.failOnce('pauses.set', new Error('14 UNAVAILABLE: connection reset'));

    await expect(handleTask(itemDelivery(ITEM, quotas.queue.maxAttempts - 2), deps)).rejects.toThrow(
      /UNAVAILABLE/,
    );
    gemini.respond = answer;
    const retry = await handleTask(itemDelivery(ITEM, quotas.queue.maxAttempts - 1), deps);

    expect(store.item(JOB, ITEM)?.attempts).toBe(2);
    expect(retry.body.outcome).toBe('succeeded');
  });
});

describe('handleTask: the answer is written once it is paid for', () => {
  it('retries a contended outcome write (ABORTED) instead of reading it as lost, and calls Gemini once', async () => {
    const { store, gemini, deps } = await setup();
    store.failOnce('items.settle', Object.assign(new Error('10 ABORTED: Too much contention'), { code: 10 }));

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply).toEqual({ status: 200, body: { outcome: 'succeeded' } });
    expect(gemini.calls).toHaveLength(1);
    expect(store.item(JOB, ITEM)?.state).toBe('succeeded');
    expect(store.jobs.get(JOB)?.status).toBe('succeeded');
  });

  it('stores an answer bigger than an item document in the bucket and points the item at it', async () => {
    const { store, gemini, objects, deps } = await setup();
    const big = { candidates: [{ content: { role: 'model', parts: [{ text: 'x'.repeat(1_200_000) }] } }] };
    gemini.respond = async () => ({
      response: big,
      usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 300_000 },
    });

    const reply = await handleTask(itemDelivery(ITEM), deps);

    const item = store.item(JOB, ITEM)!;
    expect(reply.body.outcome).toBe('succeeded');
    expect(item.response).toBeUndefined();
    expect(item.responseObject).toBe(`answers/${JOB}/${ITEM}.json`);
    expect(JSON.parse(objects.objects.get(item.responseObject!)!)).toEqual(big);
    expect(gemini.calls).toHaveLength(1);
  });

  it('retries an upload of a big answer that fails, instead of calling Gemini again', async () => {
    const { store, gemini, objects, deps } = await setup();
    objects.failPuts = 2;
    const big = { candidates: [{ content: { role: 'model', parts: [{ text: 'x'.repeat(600_000) }] } }] };
    gemini.respond = async () => ({
      response: big,
      usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 1 },
    });

    const reply = await handleTask(itemDelivery(ITEM), deps);

    expect(reply.body.outcome).toBe('succeeded');
    expect(gemini.calls).toHaveLength(1);
    expect(store.item(JOB, ITEM)?.responseObject).toBe(`answers/${JOB}/${ITEM}.json`);
  });
});
