import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createJobsClient, type JobsClient } from '../../functions/api/client.js';
import type { ResultEntry } from '../../functions/api/jobs.js';
import { queueIdForModel } from '../../functions/core/quotas.js';
import { STRICT_QUEUE_RAMP } from '../../infra/local/cloud-tasks/profile.js';
import { standInControl } from '../../infra/local/gemini/control.js';
import { localIdToken } from '../../infra/local/identity.js';
import { type Stack, startStack } from '../../infra/local/stack.js';
import { expectEachOnce } from '../helpers/e2e.js';

/**
 * A cold queue through the local cloud: a stack of its own whose functions plan for the strict Cloud
 * Tasks' ramp (`queueRamp`, one item a task otherwise). While the queue ramps from 20% of its rate,
 * its tasks carry several items, so the items keep the quota's steady rate. Every item must end
 * succeeded exactly once, with no 429 from the stand-in's rolling-minute limits, no minute over the
 * budget, none planned again for falling behind, and far fewer tasks than items while it ramped.
 */
const MODEL = 'gemini-e2e-rpm';
const PROJECT = 'fanout-e2e-cold';
const RPM = 600;
const N = 150;
let stack: Stack;
let dir: string;

beforeAll(async () => {
  const firestoreHost = inject('firestoreEmulatorHost') ?? process.env.FIRESTORE_EMULATOR_HOST!;
  dir = await mkdtemp(join(tmpdir(), 'fanout-cold-'));
  const fixture = resolve(import.meta.dirname, '..', 'fixtures', 'quotas.e2e.json');
  const quotas = JSON.parse(await readFile(fixture, 'utf8'));
  const quotasFile = join(dir, 'quotas.json');
  await writeFile(quotasFile, JSON.stringify({ ...quotas, queueRamp: STRICT_QUEUE_RAMP }));
  stack = await startStack({
    projectId: PROJECT,
    portBase: 0,
    firestoreHost,
    quotasFile,
    schedulerIntervalMs: 1000,
    geminiTimeoutMs: 5000,
    standIn: { latency: { '*': { meanMs: 40, jitterMs: 30 } } },
    logLevel: process.env.COLD_LOG_LEVEL ?? process.env.E2E_LOG_LEVEL ?? 'silent',
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const jobs = (): JobsClient =>
  createJobsClient(stack.info.ingestUrl, {
    tokenProvider: () =>
      localIdToken('ana@example.com', { issuerUrl: stack.info.idIssuerUrl, audience: stack.info.ingestUrl }),
  });

describe('a cold queue, planned for its ramp', () => {
  it(`carries ${N} items at ${RPM} RPM in packed tasks while it ramps, each once, with no 429`, async () => {
    // Arrange
    const gemini = standInControl(stack.info.geminiBaseUrl);
    const requests = Array.from({ length: N }, (_, i) => ({ key: `c${i}`, prompt: `cold queue ${i}` }));

    // Act
    const { id } = await jobs().submit({ model: MODEL, mode: 'realtime', requests });
    const job = await jobs().waitFor(id, { timeoutMs: 120_000, intervalMs: 500 });
    const lines: ResultEntry[] = [];
    for await (const line of jobs().resultsJsonl(id)) lines.push(line);
    const stats = (await gemini.stats()).models[MODEL]!;
    const queue = stack.tasks.stats(queueIdForModel(MODEL));

    // Assert: every item once, in order, succeeded; no 429, no second answer, no minute over.
    expectEachOnce(
      job,
      lines,
      requests.map((r) => r.key),
      stats,
    );
    expect(stats.peakRequestsPer60s).toBeLessThanOrEqual(Math.floor(RPM * 0.98));
    // The ramping queue sent far fewer tasks than items (up to 5 items each at first) ...
    expect(queue.dispatches).toBeLessThan(N * 0.8);
    // ... and kept up with the plan: no item fell behind it far enough to be planned again.
    const replanned = Object.keys(queue.attemptsByTask).filter((task) => /-p\d+$/.test(task));
    expect(replanned).toEqual([]);
  }, 180_000);
});
