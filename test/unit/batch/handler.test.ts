import { describe, expect, it } from 'vitest';
import { tick } from '../../../functions/batch/handler.js';
import { createLogger, type Logger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

/** The one item of the jobs these tests make. */
const ONE_ITEM = {
  id: '000000000',
  index: 0,
  key: 'k',
  request: { contents: [{ role: 'user' as const, parts: [{ text: 'x' }] }] },
  estimatedTokens: 1,
};

/** The tick's deps over a fake world, at the time `now` reads. */
function tickDeps(world: ReturnType<typeof fakeWorld>, logger: Logger, now: () => number) {
  return {
    pauses: world.db.stores.pauses,
    stores: world.db.stores,
    lifecycle: world.lifecycle,
    planner: world.planner,
    tasks: world.tasks,
    logger,
    stallMs: world.stallMs,
    now,
  };
}

describe('scheduler tick', () => {
  it('resumes only the model queues whose daily-quota pause has run out', async () => {
    // Arrange
    const now = Date.parse('2024-07-02T07:00:05Z');
    const logger = createLogger({ destination: createLogCapture().stream });
    const world = fakeWorld({ quotas: testQuotas(), logger, clock: () => now });
    const { tasks } = world;
    const pauses = world.db.stores.pauses;
    await pauses.set('gemini-2.5-flash', now - 5000, 'daily quota');
    await pauses.set('gemini-2.5-pro', now + 60_000, 'daily quota');
    await tasks.pauseModel('gemini-2.5-flash');
    await tasks.pauseModel('gemini-2.5-pro');

    // Act
    const report = await tick(tickDeps(world, logger, () => now));

    // Assert
    expect(report.resumedModels).toEqual(['gemini-2.5-flash']);
    expect(tasks.paused.has('gemini-2.5-flash')).toBe(false);
    expect(tasks.paused.has('gemini-2.5-pro')).toBe(true);
    // The resumed model's record stays, marked, for one due window (see the next test).
    expect(await pauses.list()).toEqual([
      { model: 'gemini-2.5-flash', untilMs: now - 5000, reason: 'daily quota', resumedAtMs: now },
      { model: 'gemini-2.5-pro', untilMs: now + 60_000, reason: 'daily quota' },
    ]);
  });

  it("leaves a resumed model's held-back tasks one due window to arrive before it sweeps their items", async () => {
    // Arrange: a job whose tasks a paused queue held back past their items' due time.
    let now = Date.parse('2024-07-02T07:00:05Z');
    const logger = createLogger({ destination: createLogCapture().stream });
    const world = fakeWorld({ quotas: testQuotas(), logger, clock: () => now });
    await world.lifecycle.create(
      { id: 'job-held', model: 'gemini-2.5-flash', mode: 'realtime', total: 1, source: 'api' },
      [ONE_ITEM],
    );
    const job = (await world.lifecycle.getJob('job-held'))!;
    await world.planner.enqueuePage(job, 0);
    await world.planner.pauseForDailyQuota(job, now + 3_600_000, 'per day', logger);
    const deps = tickDeps(world, logger, () => now);

    // Act: the tick that resumes the queue, one just before the window ends, one after.
    now += 3_600_000;
    const resuming = await tick(deps);
    now = world.planner.dueBy(now) - 1000;
    const during = await tick(deps);
    now += 2000;
    const after = await tick(deps);

    // Assert
    expect(resuming.resumedModels).toEqual(['gemini-2.5-flash']);
    expect(world.tasks.paused.has('gemini-2.5-flash')).toBe(false);
    expect([resuming.reconciled?.orphans, during.reconciled?.orphans]).toEqual([0, 0]);
    expect(during.resumedModels).toEqual([]);
    expect(await world.db.stores.pauses.list()).toEqual([]);
    expect(after.reconciled?.orphans).toBe(1);
  });
});

describe('scheduler tick: each duty on its own (scenario 9)', () => {
  it('still reconciles and exports when resuming a queue throws, and reports and logs the failure', async () => {
    // Arrange: a paused model whose resume fails, and a job whose enqueuing stalled.
    let now = Date.parse('2024-07-02T07:00:05Z');
    const capture = createLogCapture();
    const logger = createLogger({ destination: capture.stream });
    const world = fakeWorld({ quotas: testQuotas(), logger, clock: () => now });
    const pauses = world.db.stores.pauses;
    await pauses.set('gemini-2.5-flash', now - 5000, 'daily quota');
    await pauses.set('gemini-2.5-pro', now - 5000, 'daily quota');
    const resume = world.tasks.resumeModel.bind(world.tasks);
    world.tasks.resumeModel = async (model: string) => {
      if (model === 'gemini-2.5-flash') throw new Error('14 UNAVAILABLE: resume');
      await resume(model);
    };
    await world.lifecycle.create(
      { id: 'job-tick', model: 'gemini-2.5-pro', mode: 'realtime', total: 1, source: 'api' },
      [ONE_ITEM],
    );
    now += world.stallMs + 1000;

    // Act
    const report = await tick(tickDeps(world, logger, () => now));

    // Assert: the other model resumed, the reconciler ran, the failure is in the report and the log.
    expect(report.resumedModels).toEqual(['gemini-2.5-pro']);
    expect(report.reconciled?.reenqueued).toBe(1);
    expect(report.failed).toEqual(['resume']);
    expect(capture.events('tick.duty_failed')).toMatchObject([{ duty: 'resume' }]);
    // The record of the pause that could not be lifted stays unresumed, so the next tick tries again.
    expect((await pauses.list()).map((p) => [p.model, p.resumedAtMs])).toEqual([
      ['gemini-2.5-flash', undefined],
      ['gemini-2.5-pro', now],
    ]);
  });

  it('reports a failed export and does not throw: the scheduler call still sees what the others did', async () => {
    const now = Date.parse('2024-07-02T07:00:05Z');
    const capture = createLogCapture();
    const logger = createLogger({ destination: capture.stream });
    const world = fakeWorld({ quotas: testQuotas(), logger, clock: () => now });
    world.db.failOnce('jobs.listExportPending', new Error('14 UNAVAILABLE: exports'));

    const report = await tick({
      ...tickDeps(world, logger, () => now),
      exports: { jobs: world.db.stores.jobs, objects: world.objects, bucket: 'b' },
    });

    expect(report.failed).toEqual(['exports']);
    expect(report.reconciled).not.toBeNull();
    expect(capture.events('tick.duty_failed')).toMatchObject([
      { duty: 'exports', err: expect.stringMatching(/exports/) },
    ]);
  });
});

describe('scheduler tick: the callback duty', () => {
  it('delivers a callback the finish could not send, and a failing outbox read stops no other duty', async () => {
    // Arrange: a finished job whose receiver was down when it ended.
    let now = Date.parse('2024-07-02T07:00:05Z');
    const capture = createLogCapture();
    const logger = createLogger({ destination: capture.stream });
    const got: string[] = [];
    let down = true;
    const world = fakeWorld({
      quotas: testQuotas(),
      logger,
      clock: () => now,
      notify: async (_url, job) => {
        if (down) throw Object.assign(new Error('the callback answered 503'), { retryable: true });
        got.push(job.id);
      },
    });
    await world.lifecycle.create(
      {
        id: 'job-cb',
        model: 'gemini-2.5-flash',
        mode: 'realtime',
        total: 1,
        source: 'api',
        callbackUrl: 'https://example.com/hook',
      },
      [ONE_ITEM],
    );
    world.db.settle('job-cb', '000000000', { state: 'succeeded', response: { candidates: [] } });
    expect(await world.lifecycle.finishIfDone('job-cb')).toBe('finished');
    const deps = {
      ...tickDeps(world, logger, () => now),
      callbacks: { callbacks: world.db.stores.callbacks },
    };

    // Act: a tick whose outbox read fails, then one after the backoff with the receiver back.
    down = false;
    now += 10 * 60_000;
    world.db.failOnce('callbacks.listDue', new Error('14 UNAVAILABLE: outbox'));
    const failing = await tick(deps);
    const delivering = await tick(deps);

    // Assert
    expect(failing.failed).toEqual(['callbacks']);
    expect(failing.reconciled).not.toBeNull();
    expect(delivering.callbacks).toEqual({ delivered: 1, failed: 0, gaveUp: 0 });
    expect(got).toEqual(['job-cb']);
  });
});
