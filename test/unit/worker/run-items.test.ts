import { describe, expect, it } from 'vitest';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import type { TaskDelivery } from '../../../functions/core/tasks.js';
import { GeminiCallError } from '../../../functions/platform/gemini/client.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { handleTask } from '../../../functions/worker/handler.js';
import { combineReplies } from '../../../functions/worker/run-items.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';
import { workerDepsOn } from '../../helpers/worker-world.js';

const JOB = 'job-1';
const NOW = Date.parse('2024-07-01T19:00:00Z');
const QUEUE = 'projects/fanout-local/locations/us-central1/queues/fanout-gemini-2-5-flash';
const IDS = ['000000000', '000000001', '000000002'];

async function setup(prompts = ['a', 'b', 'c']) {
  const quotas = testQuotas();
  const logger = createLogger({ destination: createLogCapture().stream });
  const world = fakeWorld({ quotas, logger, clock: () => NOW });
  const job = normalizeJobRequest({ prompts }, quotas);
  await world.lifecycle.create(
    { id: JOB, model: job.model, mode: 'realtime', total: job.items.length, source: 'api' },
    job.items,
  );
  const deps = workerDepsOn(world, { quotas, logger, now: () => NOW });
  /** Prompts whose next call Gemini answers 500 (once each). */
  const failOnce = new Set<string>();
  const respond = world.gemini.respond;
  world.gemini.respond = async (model, request) => {
    const text = request.contents?.[0]?.parts?.[0]?.text ?? '';
    if (failOnce.delete(text))
      throw new GeminiCallError('Gemini answered 500', 500, {
        error: { code: 500, status: 'INTERNAL', message: 'An internal error has occurred.' },
      });
    return respond(model, request);
  };
  const calledFor = () => world.gemini.calls.map((c) => c.request.contents?.[0]?.parts?.[0]?.text ?? '');
  return { world, deps, quotas, failOnce, calledFor };
}

/** One delivery of the task that carries every item of the job. */
function groupDelivery(retryCount: number, ids = IDS): TaskDelivery {
  return {
    queueName: QUEUE,
    taskName: `${QUEUE}/tasks/group`,
    retryCount,
    executionCount: retryCount,
    payload: { kind: 'items', jobId: JOB, items: ids.map((itemId) => ({ itemId })) },
  };
}

describe('a task of several items', () => {
  it('records each item on its own and answers 200 when every item is settled', async () => {
    const { world, deps, calledFor } = await setup();

    const reply = await handleTask(groupDelivery(0), deps);

    expect(reply.status).toBe(200);
    expect(reply.body.detail).toBe('succeeded×3');
    expect(calledFor().sort()).toEqual(['a', 'b', 'c']);
    for (const id of IDS) expect(world.db.item(JOB, id)?.state).toBe('succeeded');
    expect(world.db.jobs.get(JOB)?.status).toBe('succeeded');
  });

  it('answers 500 when one item fails transiently and no retry of its own is planned, and the retry runs that item alone', async () => {
    const { world, deps, failOnce, calledFor } = await setup();
    failOnce.add('b');
    // The ledger gives no slot for a retry of its own: the queue's retry of the task is left.
    deps.planner = { ...deps.planner, planRetry: async () => undefined };

    const first = await handleTask(groupDelivery(0), deps);

    expect(first.status).toBe(500);
    expect(world.db.item(JOB, IDS[0]!)?.state).toBe('succeeded');
    expect(world.db.item(JOB, IDS[1]!)?.state).toBe('pending');
    expect(world.db.item(JOB, IDS[2]!)?.state).toBe('succeeded');

    const retry = await handleTask(groupDelivery(1), deps);

    expect(retry.status).toBe(200);
    expect(retry.body.detail).toBe('duplicate×2, succeeded×1');
    // Gemini answered each item once; only the failed call was made twice.
    expect(calledFor().sort()).toEqual(['a', 'b', 'b', 'c']);
    expect(world.db.jobs.get(JOB)?.status).toBe('succeeded');
  });

  it('on the last attempt records the error of each item that fails, and answers 200', async () => {
    const { world, deps, quotas, failOnce } = await setup();
    failOnce.add('a');
    failOnce.add('c');

    const reply = await handleTask(groupDelivery(quotas.queue.maxAttempts - 1), deps);

    expect(reply.status).toBe(200);
    expect(world.db.item(JOB, IDS[0]!)).toMatchObject({ state: 'failed', error: { code: 500 } });
    expect(world.db.item(JOB, IDS[1]!)?.state).toBe('succeeded');
    expect(world.db.item(JOB, IDS[2]!)).toMatchObject({ state: 'failed', error: { code: 500 } });
    expect(world.db.jobs.get(JOB)?.status).toBe('succeeded');
  });

  it('leaves an item another delivery holds to it, without asking for the task again', async () => {
    const { world, deps, calledFor } = await setup();
    await world.lifecycle.claim(JOB, IDS[1]!, 60_000);

    const reply = await handleTask(groupDelivery(0), deps);

    expect(reply.status).toBe(200);
    expect(reply.body.detail).toBe('succeeded×2, leased×1');
    expect(calledFor().sort()).toEqual(['a', 'c']);
    // Still the holder's: its outcome, or the reconciler once its lease runs out.
    expect(world.db.item(JOB, IDS[1]!)).toMatchObject({ state: 'pending', lease: { untilMs: NOW + 60_000 } });
  });

  it.each([
    ['where tasks carry several items', 4],
    ['in a task of several items where tasks carry one (a ramping queue’s)', 1],
  ])("%s, plans a transient fault's retry as a task of its own and answers 200", async (_, k) => {
    const { world, deps, quotas, failOnce, calledFor } = await setup();
    quotas.itemsPerTask = k;
    failOnce.add('b');

    const reply = await handleTask(groupDelivery(0), deps);

    expect(reply.status).toBe(200);
    expect(reply.body.detail).toBe('succeeded×2, retry-planned×1');
    const retries = [...world.tasks.itemTasks.entries()].filter(([name]) => name.endsWith(`${IDS[1]}-a0`));
    expect(retries).toHaveLength(1);
    const [, task] = retries[0]!;
    // Its slot is on the ledger, and the item waits for that task: planned there, due after it.
    const item = world.db.item(JOB, IDS[1]!)!;
    expect(item).toMatchObject({ state: 'pending', plannedMs: task.plannedMs });
    expect(item.lease).toBeFalsy();
    expect(item.dueByMs).toBeGreaterThan(task.plannedMs!);

    const retry = await handleTask(
      {
        queueName: QUEUE,
        taskName: `${QUEUE}/tasks/retry`,
        retryCount: 0,
        executionCount: 0,
        payload: { kind: 'item', jobId: JOB, itemId: IDS[1]!, plannedMs: task.plannedMs! },
      },
      { ...deps, now: () => task.plannedMs! },
    );

    expect(retry.status).toBe(200);
    expect(calledFor().sort()).toEqual(['a', 'b', 'b', 'c']);
    expect(world.db.jobs.get(JOB)?.status).toBe('succeeded');
  });

  it('where tasks carry several items, fails an item whose attempts across its tasks are spent', async () => {
    const { world, deps, quotas, failOnce } = await setup();
    quotas.itemsPerTask = 4;
    world.db.item(JOB, IDS[1]!)!.attempts = quotas.queue.maxAttempts;
    failOnce.add('b');

    const reply = await handleTask(groupDelivery(0), deps);

    expect(reply.status).toBe(200);
    expect(world.db.item(JOB, IDS[1]!)).toMatchObject({ state: 'failed', error: { code: 500 } });
    expect([...world.tasks.itemTasks.keys()].some((name) => name.includes('-a'))).toBe(false);
  });

  it('runs nothing for a cancelled job and answers 200', async () => {
    const { world, deps, calledFor } = await setup();
    await world.lifecycle.cancel(JOB);

    const reply = await handleTask(groupDelivery(0), deps);

    expect(reply.status).toBe(200);
    expect(calledFor()).toEqual([]);
  });
});

describe('combineReplies', () => {
  const r = (status: number, outcome: string, retryAfterSeconds?: number) => ({
    status,
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    body: { outcome },
  });

  it('is 200 only when every item answered 2xx', () => {
    expect(combineReplies([r(200, 'succeeded'), r(200, 'duplicate')]).status).toBe(200);
    expect(combineReplies([r(200, 'succeeded'), r(500, 'transient')]).status).toBe(500);
  });

  it('prefers 503 over 429 over 500, with the longest Retry-After of that status', () => {
    const reply = combineReplies([r(500, 'leased', 10), r(503, 'quota-day', 60), r(503, 'quota-day', 3600)]);
    expect(reply).toMatchObject({ status: 503, retryAfterSeconds: 3600 });
    expect(combineReplies([r(500, 'transient'), r(429, 'quota-minute', 7)])).toMatchObject({
      status: 429,
      retryAfterSeconds: 7,
    });
  });
});
