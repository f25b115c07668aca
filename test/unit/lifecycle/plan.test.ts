import { describe, expect, it } from 'vitest';
import { dueWindowMs } from '../../../functions/core/due.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { estimateContentTokens, plannedTokens } from '../../../functions/core/tokens.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { roundTrip } from '../../helpers/fake-stores.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

// The planner calibrates its token estimates with Gemini's own count (countTokens on a sample of
// each page) before it reserves TPM on the model's ledger: the plan must hold when the estimate is
// off either way, whatever the script.

const T0 = Date.parse('2024-07-01T19:00:00Z');

async function setup(prompts: string[]) {
  const capture = createLogCapture();
  const quotas = testQuotas();
  const world = fakeWorld({ quotas, logger: createLogger({ destination: capture.stream }), clock: () => T0 });
  const normalized = normalizeJobRequest({ prompts, mode: 'realtime' }, quotas);
  await world.lifecycle.create(
    { id: 'job-plan', model: normalized.model, mode: 'realtime', total: prompts.length, source: 'api' },
    normalized.items,
  );
  const job = (await world.lifecycle.getJob('job-plan'))!;
  /** Tokens the job holds on the model's ledger. */
  const reserved = () =>
    Object.values(world.db.ledgers.get(job.model)?.buckets ?? {}).reduce((a, b) => a + b, 0);
  return { ...world, job, normalized, capture, reserved };
}

describe('planner: token calibration', () => {
  it.each([
    ['counts 30% more than the estimate', 1.3],
    ['counts 30% less than the estimate', 0.7],
  ])('reserves what Gemini counts when it %s', async (_name, skew) => {
    const prompts = Array.from({ length: 40 }, (_, i) => `prompt ${i} ${'lorem ipsum '.repeat(30)}`);
    const { gemini, planner, job, normalized, reserved } = await setup(prompts);
    gemini.count = async (_m, r) => Math.ceil(estimateContentTokens(r) * skew);

    await planner.enqueuePage(job, 0);

    const estimated = normalized.items.reduce((n, i) => n + i.estimatedTokens, 0);
    expect(reserved()).toBeGreaterThanOrEqual(Math.ceil(estimated * skew));
    expect(reserved()).toBeLessThanOrEqual(Math.ceil(estimated * skew * 1.1));
    expect(gemini.countCalls.length).toBeGreaterThan(0);
    expect(gemini.countCalls.length).toBeLessThanOrEqual(12);
    expect(job.tokenRatio).toBeCloseTo(skew * 1.05, 1);
  });

  it('plans a page mixing scripts for its costliest kind (CJK counted at one token a character)', async () => {
    const latin = Array.from({ length: 20 }, (_, i) => `latin ${i} ${'word '.repeat(40)}`);
    const cjk = Array.from({ length: 20 }, (_, i) => `中文提示${i}${'漢字'.repeat(60)}`);
    const { gemini, planner, job, normalized, reserved } = await setup([...latin, ...cjk]);
    // Gemini's CJK count: about one token a character, where bytes/4 says 3/4 of one.
    gemini.count = async (_m, r) => {
      const text = r.contents.flatMap((c) => c.parts.map((p) => p.text ?? '')).join('');
      const cjkChars = [...text].filter((ch) => /\p{Script=Han}/u.test(ch)).length;
      return Math.ceil((Buffer.byteLength(text) - cjkChars * 3) / 4) + cjkChars;
    };

    await planner.enqueuePage(job, 0);

    const cjkItems = normalized.items.slice(20);
    const cjkCounted = cjkItems.reduce((n, i) => n + i.estimatedTokens * (4 / 3), 0);
    const latinEstimated = normalized.items.slice(0, 20).reduce((n, i) => n + i.estimatedTokens, 0);
    expect(reserved()).toBeGreaterThanOrEqual(Math.floor(cjkCounted + latinEstimated));
  });

  it('falls back to the ratio the job has seen when countTokens fails, and says so', async () => {
    const { gemini, planner, job, normalized, reserved, capture } = await setup([
      'a b c d e f',
      'g h i j k l',
    ]);
    job.tokenRatio = 1.5;
    gemini.count = async () => {
      throw new Error('429 countTokens quota');
    };

    await planner.enqueuePage(job, 0);

    expect(reserved()).toBe(normalized.items.reduce((n, i) => n + plannedTokens(i.estimatedTokens, 1.5), 0));
    expect(capture.events('plan.calibration_failed')).toHaveLength(1);
  });
});

describe('planner: due times', () => {
  it('gives every item it plans a due time: its planned send plus the dispatch deadline and the retry budget', async () => {
    const { planner, job, db, tasks } = await setup(['a', 'b', 'c']);

    await planner.enqueuePage(job, 0);

    const window = dueWindowMs(testQuotas().queue, 600);
    expect(tasks.itemTasks.size).toBe(3);
    for (const task of tasks.itemTasks.values()) {
      expect(db.item('job-plan', task.itemId)?.dueByMs).toBe(task.plannedMs! + window);
    }
  });
});

describe('planner: daily quota pause (scenario 9)', () => {
  it('pauses the queue only once the pause record is written: no queue paused with no record to resume it', async () => {
    const { planner, job, db, tasks, capture } = await setup(['a']);
    db.failOnce('pauses.set', new Error('14 UNAVAILABLE'));
    const log = createLogger({ destination: capture.stream });

    await expect(planner.pauseForDailyQuota(job, T0 + 3_600_000, 'per day', log)).rejects.toThrow(
      /UNAVAILABLE/,
    );
    // Let whatever was started alongside finish: a pause on its way would land now.
    for (let i = 0; i < 5; i++) await roundTrip();
    expect(tasks.paused.has(job.model)).toBe(false);

    await planner.pauseForDailyQuota(job, T0 + 3_600_000, 'per day', log);
    expect(tasks.paused.has(job.model)).toBe(true);
    expect(db.pauses.get(job.model)).toMatchObject({ untilMs: T0 + 3_600_000 });
  });
});
