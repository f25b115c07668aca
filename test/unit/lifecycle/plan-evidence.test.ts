import { describe, expect, it } from 'vitest';
import type { GenerateContentRequest } from '../../../functions/core/jobs.js';
import { parseQuotas } from '../../../functions/core/quotas.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { estimateContentTokens } from '../../../functions/core/tokens.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

// A seeded simulation of the token plan over a job longer than the plan's horizon, so later pages
// are planned after answers came back: every item is sent at its planned time and counted by a
// Gemini whose count differs from the estimate (a factor, per-item noise, a shift along the file).
// Each send is checked against the rolling minute Gemini enforces: zero 429s means no 60-second
// window over TPM. The planner, the lifecycle and the evidence in the counters are the real ones.

const T0 = Date.parse('2024-07-01T19:00:00Z');
const MODEL = 'gemini-2.5-flash';
const TPM = 30_000;
const ITEMS = 2400;

/** Gemini's count of item `i` (estimate `e`): `skew(i)` × e, ± `noise` per item (deterministic). */
type TrueCount = (i: number, e: number) => number;

const jitter = (i: number) => {
  const u = Math.sin(i * 12.9898 + 78.233) * 43758.5453;
  return (u - Math.floor(u)) * 2 - 1;
};
const skewed =
  (skew: (i: number) => number, noise: number): TrueCount =>
  (i, e) =>
    Math.ceil(e * skew(i) * (1 + noise * jitter(i)));

const textOf = (r: GenerateContentRequest) =>
  r.contents.flatMap((c) => c.parts.map((p) => p.text ?? '')).join('');
const indexOf = (r: GenerateContentRequest) => Number(/^item (\d+) /.exec(textOf(r))![1]);

async function simulate(count: TrueCount) {
  let now = T0;
  const capture = createLogCapture();
  const base = testQuotas();
  const quotas = parseQuotas({
    ...base,
    models: { ...base.models, [MODEL]: { ...base.models[MODEL]!, rpm: 30_000, tpm: TPM } },
  });
  const world = fakeWorld({
    quotas,
    logger: createLogger({ destination: capture.stream, level: 'debug' }),
    clock: () => now,
  });
  // Prompts of 150 to 350 estimated tokens.
  const prompts = Array.from(
    { length: ITEMS },
    (_, i) => `item ${i} ${'w'.repeat(600 + Math.floor((jitter(i + 7) + 1) * 400))}`,
  );
  const normalized = normalizeJobRequest({ model: MODEL, prompts, mode: 'realtime' }, quotas);
  await world.lifecycle.create(
    { id: 'job-ev', model: MODEL, mode: 'realtime', total: ITEMS, source: 'api' },
    normalized.items,
  );
  world.gemini.count = async (_m, r) => count(indexOf(r), estimateContentTokens(r));

  const sends: Array<{ atMs: number; tokens: number }> = [];
  const answers: Array<{ atMs: number; itemId: string; index: number }> = [];
  const sent = new Set<string>();
  let through = 0;
  let resumeAtMs: number | undefined = T0;
  while (sent.size < ITEMS || answers.length > 0) {
    if (resumeAtMs !== undefined && now >= resumeAtMs) {
      resumeAtMs = undefined;
      do {
        const job = (await world.lifecycle.getJob('job-ev'))!;
        const page = await world.planner.enqueuePage(job, through);
        through = page.through;
        resumeAtMs = page.done ? undefined : page.resumeAtMs;
      } while (resumeAtMs === undefined && through < ITEMS);
    }
    for (const task of world.tasks.itemTasks.values()) {
      if (sent.has(task.itemId) || task.plannedMs === undefined || task.plannedMs >= now + 1000) continue;
      sent.add(task.itemId);
      const estimated = normalized.items[task.index]!.estimatedTokens;
      sends.push({ atMs: task.plannedMs, tokens: count(task.index, estimated) });
      answers.push({ atMs: task.plannedMs + 2000, itemId: task.itemId, index: task.index });
    }
    for (const a of answers.filter((x) => x.atMs <= now)) {
      answers.splice(answers.indexOf(a), 1);
      const claim = await world.lifecycle.claim('job-ev', a.itemId, 60_000);
      if (claim.outcome !== 'claimed') throw new Error(`claim ${a.itemId}: ${claim.outcome}`);
      const estimatedTokens = claim.item.estimatedTokens;
      await world.lifecycle.complete(claim.lease, {
        state: 'succeeded',
        response: {},
        usage: { promptTokens: count(a.index, estimatedTokens), outputTokens: 1 },
        costUsd: 0,
        estimatedTokens,
      });
    }
    now += 1000;
    if (now > T0 + 3 * 3_600_000) throw new Error('the simulation did not end');
  }
  const calibrated = capture
    .events('plan.calibrated')
    .map((l) => ({ ratio: l.ratio as number, source: l.source as string }));
  return {
    sends,
    calibrated,
    peak: peakMinute(sends),
    finishedMs: Math.max(...sends.map((s) => s.atMs)) - T0,
  };
}

/** The most input tokens any rolling 60-second window saw. */
function peakMinute(sends: Array<{ atMs: number; tokens: number }>): number {
  const sorted = [...sends].sort((a, b) => a.atMs - b.atMs);
  let peak = 0;
  let sum = 0;
  let from = 0;
  for (const s of sorted) {
    sum += s.tokens;
    while (sorted[from]!.atMs <= s.atMs - 60_000) sum -= sorted[from++]!.tokens;
    peak = Math.max(peak, sum);
  }
  return peak;
}

describe('token plan simulation: margins earned from answers, zero 429s', () => {
  it.each([
    ['counts 30% more, ±10% per item', skewed(() => 1.3, 0.1)],
    ['counts 30% less, ±10% per item', skewed(() => 0.7, 0.1)],
  ])(
    'keeps every minute within TPM when Gemini %s, and plans later pages by the evidence',
    async (_name, count) => {
      const { peak, calibrated } = await simulate(count);

      expect(peak).toBeLessThanOrEqual(TPM);
      // The first pages by the sample (max × 1.05), the later ones by the answers, at a smaller margin.
      expect(calibrated[0]!.source).toBe('sample');
      const learned = calibrated.filter((c) => c.source === 'job');
      expect(learned.length).toBeGreaterThan(0);
      expect(Math.max(...learned.map((c) => c.ratio))).toBeLessThan(calibrated[0]!.ratio);
    },
    60_000,
  );

  it('keeps every minute within TPM when the inputs turn 30% costlier late in the job (the evidence was wrong)', async () => {
    const { peak, calibrated } = await simulate(skewed((i) => (i < 1800 ? 1.0 : 1.3), 0.05));

    expect(peak).toBeLessThanOrEqual(TPM);
    // Pages before the shift were planned by the evidence, at a small margin over 1.0 …
    const learned = calibrated.filter((c) => c.source === 'job');
    expect(learned.length).toBeGreaterThan(0);
    expect(Math.max(...learned.map((c) => c.ratio))).toBeLessThan(1.05);
    // … pages after it are not: the margin grew back to what the costlier inputs count.
    expect(calibrated.at(-1)!.ratio).toBeGreaterThanOrEqual(1.3);
  }, 60_000);
});

describe('token plan: evidence per model', () => {
  /** A world with one model; Gemini counts `ratioOf(prompt)` × the estimate. */
  async function modelWorld(ratioOf: (text: string) => number) {
    const capture = createLogCapture();
    const quotas = testQuotas();
    const world = fakeWorld({
      quotas,
      logger: createLogger({ destination: capture.stream, level: 'debug' }),
      clock: () => T0,
    });
    const counted = (r: GenerateContentRequest) => Math.ceil(estimateContentTokens(r) * ratioOf(textOf(r)));
    world.gemini.count = async (_m, r) => counted(r);
    /** Creates a job of `prompts`, plans it, answers every item as Gemini counts it and finishes it. */
    const run = async (id: string, prompts: string[]) => {
      const normalized = normalizeJobRequest({ model: MODEL, prompts, mode: 'realtime' }, quotas);
      await world.lifecycle.create(
        { id, model: MODEL, mode: 'realtime', total: prompts.length, source: 'api' },
        normalized.items,
      );
      await world.planner.enqueuePage((await world.lifecycle.getJob(id))!, 0);
      for (const item of normalized.items) {
        const claim = await world.lifecycle.claim(id, item.id, 60_000);
        if (claim.outcome !== 'claimed') throw new Error(claim.outcome);
        await world.lifecycle.complete(claim.lease, {
          state: 'succeeded',
          response: {},
          usage: { promptTokens: counted(item.request), outputTokens: 1 },
          costUsd: 0,
          estimatedTokens: claim.item.estimatedTokens,
        });
      }
      await world.lifecycle.finishIfDone(id);
      return capture
        .events('plan.calibrated')
        .filter((l) => l.jobId === id)
        .map((l) => ({ ratio: l.ratio as number, source: l.source }));
    };
    return { world, run };
  }
  const latin = (job: string) =>
    Array.from({ length: 60 }, (_, i) => `${job} ${i} ${'lorem ipsum '.repeat(40)}`);
  const cyrillic = (job: string) =>
    Array.from({ length: 60 }, (_, i) => `${job} ${i} ${'привет мир '.repeat(40)}`);

  it('plans a fresh job by what earlier jobs on the model counted when its sample looks like them', async () => {
    const { world, run } = await modelWorld(() => 1.25);

    const first = await run('job-a', latin('a'));
    const second = await run('job-b', latin('b'));

    // No evidence for the first job: its sample's highest ratio × 1.05, as before.
    expect(first).toHaveLength(1);
    expect(first[0]!.source).toBe('sample');
    expect(first[0]!.ratio).toBeGreaterThanOrEqual(1.25 * 1.05);
    // Both jobs folded their answers into the model's evidence when they finished.
    expect((await world.db.stores.ledger.evidence(MODEL)).items).toBe(120);
    // The second is planned by the model's evidence, near the floor's 1% over what Gemini counts.
    expect(second).toHaveLength(1);
    expect(second[0]!.source).toBe('model');
    expect(second[0]!.ratio).toBeGreaterThanOrEqual(1.25 * 1.01);
    expect(second[0]!.ratio).toBeLessThan(1.25 * 1.03);
  });

  it("does not plan a fresh job by other jobs' answers when its page has no sample to compare", async () => {
    const { world, run } = await modelWorld(() => 0.7);
    await run('job-a', latin('a'));
    // countTokens fails for the next job (its page could as well be all media): nothing to compare.
    world.gemini.count = async () => {
      throw new Error('503 countTokens unavailable');
    };

    const unsampled = await run('job-m', latin('m'));

    // Planned at the estimate, not at the 0.7 other jobs' answers counted.
    expect(unsampled).toEqual([]);
    expect((await world.lifecycle.getJob('job-m'))!.tokenRatio).toBeUndefined();
  });

  it("folds each answer into the model's evidence once, also when a read of the job's failed", async () => {
    const { world } = await modelWorld(() => 1.25);
    const prompts = latin('x');
    const normalized = normalizeJobRequest({ model: MODEL, prompts, mode: 'realtime' }, testQuotas());
    await world.lifecycle.create(
      { id: 'job-x', model: MODEL, mode: 'realtime', total: 60, source: 'api' },
      normalized.items,
    );
    const job = async () => (await world.lifecycle.getJob('job-x'))!;
    const answer = async (from: number, to: number) => {
      for (const item of normalized.items.slice(from, to)) {
        const claim = await world.lifecycle.claim('job-x', item.id, 60_000);
        if (claim.outcome !== 'claimed') throw new Error(claim.outcome);
        const usage = { promptTokens: Math.ceil(item.estimatedTokens * 1.25), outputTokens: 1 };
        await world.lifecycle.complete(claim.lease, {
          state: 'succeeded',
          response: {},
          usage,
          costUsd: 0,
          estimatedTokens: item.estimatedTokens,
        });
      }
    };

    await world.planner.enqueuePage(await job(), 0, 30);
    await answer(0, 30);
    await world.planner.enqueuePage(await job(), 30, 45);
    world.db.failOnce('counters.evidence');
    await world.planner.enqueuePage(await job(), 45, 60);
    await answer(30, 60);
    await world.lifecycle.finishIfDone('job-x');

    expect((await world.db.stores.ledger.evidence(MODEL)).items).toBe(60);
  });

  it('plans a fresh job by its sample when it is unlike what the model has seen', async () => {
    // Latin text counted 25% over the estimate, Cyrillic 60% over it.
    const { run } = await modelWorld((text) => (/[а-я]/.test(text) ? 1.6 : 1.25));

    await run('job-a', latin('a'));
    const other = await run('job-c', cyrillic('c'));

    expect(other).toHaveLength(1);
    expect(other[0]!.source).toBe('sample');
    expect(other[0]!.ratio).toBeGreaterThanOrEqual(1.6 * 1.05);
  });
});
