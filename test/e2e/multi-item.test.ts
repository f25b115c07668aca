import { resolve } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createJobsClient, type JobsClient } from '../../functions/api/client.js';
import type { ResultEntry } from '../../functions/api/jobs.js';
import { queueIdForModel } from '../../functions/core/quotas.js';
import { standInControl } from '../../infra/local/gemini/control.js';
import { localIdToken } from '../../infra/local/identity.js';
import { type Stack, startStack } from '../../infra/local/stack.js';
import { expectEachOnce } from '../helpers/e2e.js';

/**
 * Several items a task through the local cloud: a stack of its own with ITEMS_PER_TASK=4 (the
 * suite's stack runs one item a task), the strict Cloud Tasks delivering 5% of tasks twice, and 15%
 * of Gemini calls failing transiently (500, 503), so tasks whose items end differently are retried.
 * Every item must end succeeded exactly once (Gemini answered none twice), with no 429 from the
 * stand-in's rolling-minute limits, and the queue must have carried the items in far fewer tasks.
 */
const MODEL = 'gemini-e2e-rpm';
const PROJECT = 'fanout-e2e-multi';
const N = 300;
const K = 4;
const FAULTS = { internalShare: 0.1, unavailableShare: 0.05 };
let stack: Stack;

beforeAll(async () => {
  const firestoreHost = inject('firestoreEmulatorHost') ?? process.env.FIRESTORE_EMULATOR_HOST!;
  stack = await startStack({
    projectId: PROJECT,
    portBase: 0,
    firestoreHost,
    quotasFile: resolve(import.meta.dirname, '..', 'fixtures', 'quotas.e2e.json'),
    schedulerIntervalMs: 1000,
    geminiTimeoutMs: 5000,
    duplicateShare: 0.05,
    standIn: { latency: { '*': { meanMs: 40, jitterMs: 30 } } },
    itemsPerTask: K,
    logLevel: process.env.MI_LOG_LEVEL ?? process.env.E2E_LOG_LEVEL ?? 'silent',
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

const jobs = (): JobsClient =>
  createJobsClient(stack.info.ingestUrl, {
    tokenProvider: () =>
      localIdToken('ana@example.com', { issuerUrl: stack.info.idIssuerUrl, audience: stack.info.ingestUrl }),
  });

describe(`${K} items a task`, () => {
  it(`ends ${N} items exactly once at the quota's rate, with transient faults mid-task and no 429`, async () => {
    // Arrange
    const gemini = standInControl(stack.info.geminiBaseUrl);
    await gemini.configure({ faults: { byModel: { [MODEL]: FAULTS } } });
    const requests = Array.from({ length: N }, (_, i) => ({ key: `m${i}`, prompt: `multi item ${i}` }));

    // Act
    const { id } = await jobs().submit({ model: MODEL, mode: 'realtime', requests });
    const job = await jobs()
      .waitFor(id, { timeoutMs: 240_000, intervalMs: 500 })
      .catch(async (err: Error) => {
        console.error(await whatIsLeft(id));
        throw err;
      });
    const lines: ResultEntry[] = [];
    for await (const line of jobs().resultsJsonl(id)) lines.push(line);
    const stats = (await gemini.stats()).models[MODEL]!;
    const queue = stack.tasks.stats(queueIdForModel(MODEL));

    // Assert: every item once, in order, succeeded; faults happened, no 429 and no second answer.
    expect(lines.filter((l) => !('response' in l))).toEqual([]);
    expectEachOnce(
      job,
      lines,
      requests.map((r) => r.key),
      stats,
    );
    // The items went in tasks of up to K, and a transient fault gave its item one task of its own (a
    // planned retry), not the whole task again: first tasks, retries and the odd queue retry (a
    // store error) included, the queue dispatched about N/K + faults, well under one task an item.
    const faults = (stats.faults['500'] ?? 0) + (stats.faults['503'] ?? 0);
    expect(faults).toBeGreaterThan(0);
    expect(queue.dispatches).toBeGreaterThan(N / K - 1);
    expect(queue.dispatches).toBeLessThanOrEqual(Math.ceil(N / K) + faults + 15);
    expect(queue.dispatches).toBeLessThan(N * 0.75);
  }, 300_000);
});

/** What a run that did not end leaves to look at: the queue's counters and every unfinished item. */
async function whatIsLeft(jobId: string): Promise<string> {
  const {
    perSecond: _,
    attemptsByTask: __,
    attemptTimesByTask: ___,
    dispatchTimes: ____,
    ...queue
  } = stack.tasks.stats(queueIdForModel(MODEL)) as unknown as Record<string, unknown>;
  const host = inject('firestoreEmulatorHost') ?? process.env.FIRESTORE_EMULATOR_HOST!;
  const db = new Firestore({ projectId: PROJECT, host, ssl: false });
  try {
    const docs = await db
      .collection('jobs')
      .doc(jobId)
      .collection('items')
      .where('state', '!=', 'succeeded')
      .get();
    const items = docs.docs.map((d) => {
      const { requestJson: _r, expireAt: _e, ...rest } = d.data();
      return { id: d.id, ...rest };
    });
    return JSON.stringify({ now: Date.now(), queue, items }, null, 1);
  } finally {
    await db.terminate();
  }
}
