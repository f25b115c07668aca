import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createJobsClient, type JobsClient, sleep } from '../../functions/api/client.js';
import type { JobView } from '../../functions/api/jobs.js';
import { SPEND_NOTICE_START } from '../../functions/core/spend-pace.js';
import { standInControl } from '../../infra/local/gemini/control.js';
import { localIdToken } from '../../infra/local/identity.js';
import { type Stack, startStack } from '../../infra/local/stack.js';

/**
 * Spend pacing and ordering for the implicit cache through the local cloud, on a stack of its own:
 * its quotas (test/fixtures/quotas.spend.json) set a project spend limit of $0.004 per "10 minutes"
 * scaled to 10 seconds, which the Gemini stand-in enforces with 429s over the same rolling window,
 * priced at the same prices. The stand-in's implicit cache keeps one prefix warm per model.
 */
const PROJECT = 'fanout-e2e-spend';
const LIMIT_USD = 0.004;
let stack: Stack;

beforeAll(async () => {
  const firestoreHost = inject('firestoreEmulatorHost') ?? process.env.FIRESTORE_EMULATOR_HOST!;
  stack = await startStack({
    projectId: PROJECT,
    portBase: 0,
    firestoreHost,
    quotasFile: resolve(import.meta.dirname, '..', 'fixtures', 'quotas.spend.json'),
    schedulerIntervalMs: 1000,
    geminiTimeoutMs: 5000,
    standIn: {
      latency: { '*': { meanMs: 40, jitterMs: 30 } },
      implicitCache: { enabled: true, minTokens: { 'gemini-e2e-prefix-off': 1024 } },
    },
    logLevel: process.env.E2E_LOG_LEVEL ?? 'silent',
  });
});

afterAll(async () => {
  await stack?.close();
});

const jobs = (): JobsClient =>
  createJobsClient(stack.info.ingestUrl, {
    tokenProvider: () =>
      localIdToken('ana@example.com', { issuerUrl: stack.info.idIssuerUrl, audience: stack.info.ingestUrl }),
  });
const stats = () => standInControl(stack.info.geminiBaseUrl).stats();

describe('spend pacing', () => {
  it('paces a job costing twice the limit so no rolling window goes over it, with no 429, and says so', async () => {
    // Arrange: 40 prompts of 400 characters, about $0.0002 each as billed: $0.008 in all.
    const prompts = Array.from(
      { length: 40 },
      (_, i) => `${String(i).padStart(3, '0')} ${'spend '.repeat(66)}`,
    );
    const started = Date.now();
    // Act: submit, and watch the view while it runs.
    const { id } = await jobs().submit({ model: 'gemini-e2e-spend', mode: 'realtime', prompts });
    const notices = new Set<string>();
    let view: JobView = await jobs().get(id);
    while (view.status !== 'succeeded' && view.status !== 'failed' && Date.now() - started < 150_000) {
      if (view.notice) notices.add(view.notice);
      await sleep(500);
      view = await jobs().get(id);
    }
    // Assert: every item answered, none refused, every rolling 10 s within the limit.
    const spend = (await stats()).spend;
    expect(view.counts).toMatchObject({ total: 40, succeeded: 40, failed: 0 });
    expect(view.quota429s).toBeUndefined();
    expect((await stats()).models['gemini-e2e-spend']?.rejected429 ?? 0).toBe(0);
    expect(spend.admittedUsd).toBeGreaterThan(1.5 * LIMIT_USD);
    expect(spend.busiestWindowUsd).toBeLessThanOrEqual(LIMIT_USD);
    expect(view.costUsd).toBeCloseTo(spend.admittedUsd, 6);
    // Paced: the job took windows, not the 4 s its RPM allows, and its view said why.
    expect(Date.now() - started).toBeGreaterThan(15_000);
    expect([...notices].some((n) => n.startsWith(SPEND_NOTICE_START))).toBe(true);
  }, 180_000);
});

describe('ordering for the implicit cache', () => {
  const A = 'Shared context A. '.repeat(300); // 5,400 characters: over 1,024 tokens
  const B = 'Shared context B. '.repeat(300);
  const prompts = Array.from({ length: 20 }, (_, i) => `${i % 2 ? B : A} question ${i}`);

  it('raises the hit rate of a job alternating two long prefixes above what interleaving gives', async () => {
    // Act: the same items on a model whose minimum the planner knows (ordered) and on one it does not.
    const [ordered, unordered] = await Promise.all(
      ['gemini-e2e-prefix', 'gemini-e2e-prefix-off'].map(async (model) => {
        const { id } = await jobs().submit({ model, mode: 'realtime', prompts });
        return jobs().waitFor(id, { timeoutMs: 90_000, intervalMs: 500 });
      }),
    );
    // Assert: in runs, every repeat but the boundaries reads the cache; interleaved, hardly any.
    expect(ordered!.counts.succeeded).toBe(20);
    expect(unordered!.counts.succeeded).toBe(20);
    const orderedRate = ordered!.implicitCache?.hitRate ?? 0;
    const unorderedRate = unordered!.implicitCache?.hitRate ?? 0;
    expect(orderedRate).toBeGreaterThanOrEqual(0.7);
    expect(orderedRate - unorderedRate).toBeGreaterThanOrEqual(0.4);
    expect(ordered!.implicitCache!.cachedTokens).toBeGreaterThan(10 * 1024);
    expect(ordered!.implicitCache!.savedUsd).toBeGreaterThan(0);
    // Results stay in input order whatever order the items were sent in.
    const lines = [];
    for await (const entry of jobs().resultsJsonl(ordered!.id)) lines.push(entry.index);
    expect(lines).toEqual(Array.from({ length: 20 }, (_, i) => i));
  }, 120_000);
});
