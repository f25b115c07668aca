import { afterAll, describe, expect, it } from 'vitest';
import { entryKey } from '../../functions/api/jobs.js';
import {
  call,
  configureStandIn,
  createJob,
  jobsClient,
  resultsJsonl,
  standInStats,
  waitForJob,
} from '../helpers/e2e.js';

/**
 * Flex through the local cloud: a `mode: "flex"` job asks Gemini (the stand-in) for the Flex tier on
 * every call; Flex answers after its (scaled) minutes, items the stand-in sheds with 503 are tried
 * again on Flex with backoff and go standard once the job's deadline leaves less than Flex's latency
 * (test/fixtures/quotas.e2e.json: 3 s, backoff 0.5–2 s); every item is priced at the tier that
 * served it, and the job view says so per tier, with what it saved against all-standard.
 */
const MODEL = 'gemini-e2e-flex';
// gemini-e2e-flex's prices in quotas.e2e.json, USD per 1M tokens.
const INPUT = 0.3;
const OUTPUT = 2.5;

interface Usage {
  promptTokenCount?: number;
  candidatesTokenCount?: number;
  thoughtsTokenCount?: number;
}

const standardUsd = (u: Usage | undefined) =>
  ((u?.promptTokenCount ?? 0) * INPUT +
    ((u?.candidatesTokenCount ?? 0) + (u?.thoughtsTokenCount ?? 0)) * OUTPUT) /
  1e6;

describe('mode flex', () => {
  afterAll(async () => {
    await configureStandIn({ serviceTiers: { flex: { minMs: 60_000, maxMs: 900_000, timeScale: 1 } } });
  });

  it('serves items on Flex at half price, retries shed ones and falls back to standard near the deadline', async () => {
    // Arrange: Flex answers in 1–10 "minutes" of 1 ms each; two items are always shed.
    await configureStandIn({ serviceTiers: { flex: { minMs: 60_000, maxMs: 600_000, timeScale: 0.001 } } });
    const before = (await standInStats()).models[MODEL]?.faults['503'] ?? 0;
    const requests = [
      ...Array.from({ length: 4 }, (_, i) => ({ key: `flex-${i}`, prompt: `a flexible question ${i}` })),
      ...Array.from({ length: 2 }, (_, i) => ({
        key: `shed-${i}`,
        prompt: `always shed ${i} [[flex:shed]]`,
      })),
    ];

    // Act
    const id = await createJob({ model: MODEL, mode: 'flex', deadline: '30s', requests });
    const job = await waitForJob(id, 90_000);
    const lines = await resultsJsonl(id);
    const shedCalls = ((await standInStats()).models[MODEL]?.faults['503'] ?? 0) - before;

    // Assert: every item answered; the shed ones were tried on Flex more than once each, then standard.
    expect(job).toMatchObject({
      status: 'succeeded',
      mode: 'flex',
      counts: { total: 6, succeeded: 6, failed: 0, pending: 0 },
    });
    expect(job.deadline).toBeDefined();
    expect(shedCalls).toBeGreaterThanOrEqual(4);
    const usage = (key: string) => {
      const line = lines.find((l) => entryKey(l) === key);
      return line && 'response' in line
        ? (line.response as { usageMetadata?: Usage }).usageMetadata
        : undefined;
    };
    const flexAtStandard = requests.slice(0, 4).reduce((sum, r) => sum + standardUsd(usage(r.key)), 0);
    const shedAtStandard = requests.slice(4).reduce((sum, r) => sum + standardUsd(usage(r.key)), 0);
    expect(job.tiers).toEqual({
      flex: { items: 4, costUsd: expect.closeTo(flexAtStandard / 2, 9) },
      standard: { items: 2, costUsd: expect.closeTo(shedAtStandard, 9) },
    });
    expect(job.costUsd).toBeCloseTo(flexAtStandard / 2 + shedAtStandard, 9);
    expect(job.savedUsd).toBeCloseTo(flexAtStandard / 2, 9);
  }, 120_000);

  it('answers a dry run with items, tokens, cost per tier and the time the quota allows, storing and calling nothing', async () => {
    // Arrange
    const statsBefore = (await standInStats()).models[MODEL];
    // Job ids known before (the stack is shared: other files create jobs meanwhile, on their models).
    const jobsBefore = new Set((await jobsClient().list({ pageSize: 100 })).jobs.map((j) => j.id));
    const prompts = Array.from({ length: 30 }, (_, i) => `a question worth estimating, number ${i}`);
    // Act
    const estimate = await jobsClient().estimate({
      model: MODEL,
      deadline: '2h',
      prompts,
      config: { maxOutputTokens: 100 },
    });
    const refused = await call('POST', '/jobs?dryRun=true', { model: MODEL, deadline: 'yesterday', prompts });
    // Assert: auto with two hours left picks Flex; 30 items capped at 100 output tokens each.
    expect(estimate).toMatchObject({
      dryRun: true,
      model: MODEL,
      mode: 'flex',
      items: 30,
      tokens: { outputAtMost: 3000, countedBy: 'estimate' },
      costIncludesOutput: true,
    });
    const standard = (estimate.tokens.input * INPUT + 3000 * OUTPUT) / 1e6;
    expect(estimate.costUsd.standard).toBeCloseTo(standard, 9);
    expect(estimate.costUsd.flex).toBeCloseTo(standard / 2, 9);
    expect(estimate.costUsd.batch).toBeCloseTo(standard / 2, 9);
    expect(estimate.quotaSeconds).toBeGreaterThan(0);
    expect(refused.status).toBe(400);
    const jobsAfter = (await jobsClient().list({ pageSize: 100 })).jobs;
    expect(jobsAfter.filter((j) => j.model === MODEL && !jobsBefore.has(j.id))).toEqual([]);
    expect((await standInStats()).models[MODEL]?.requests ?? 0).toBe(statsBefore?.requests ?? 0);
  });
});
