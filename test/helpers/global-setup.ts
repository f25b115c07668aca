import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startFirestoreEmulator } from '../../infra/local/firestore.js';
import { type StackInfo, startStack } from '../../infra/local/stack.js';
import { JAVA, requireTool } from './tools.js';

declare module 'vitest' {
  export interface ProvidedContext {
    firestoreEmulatorHost: string;
    stack: StackInfo;
  }
}

/** The project of the unit tier (vitest.config.ts): its files need no emulator and no network. */
const UNIT_PROJECT = 'unit';

/**
 * Whether this run executes a file outside the unit tier. Vitest runs the root project's global setup
 * whichever projects are selected (`--project unit` included) and after it has listed the files to run,
 * so the answer comes from those files: `vitest run test/unit/core/rate.test.ts` starts nothing either.
 */
function runNeedsLocalCloud(project: TestProject): boolean {
  const { projects, state } = project.vitest;
  const unit = projects.find((p) => p.name === UNIT_PROJECT);
  const files = state.getPaths();
  if (files.length === 0) return projects.some((p) => p.name !== UNIT_PROJECT);
  return files.some((file) => !unit?.matchesTestGlob(file));
}

/**
 * Starts each emulator once per test run, and the whole local cloud (functions included) on top of
 * them; tests isolate themselves by project id, prefix or model rather than by restarting servers.
 * An already running Firestore emulator (FIRESTORE_EMULATOR_HOST set) is reused. A run of unit files
 * only starts nothing.
 */
export default async function setup(project: TestProject) {
  if (!runNeedsLocalCloud(project)) return;
  const existing = process.env.FIRESTORE_EMULATOR_HOST;
  if (!existing) requireTool(JAVA);
  const firestore = existing ? undefined : await startFirestoreEmulator();
  const host = existing ?? firestore!.host;
  const stack = await startStack({
    projectId: 'fanout-e2e',
    portBase: 0,
    firestoreHost: host,
    quotasFile: resolve(import.meta.dirname, '..', 'fixtures', 'quotas.e2e.json'),
    // Cloud Tasks is at-least-once: every e2e job also sees duplicate deliveries.
    duplicateShare: 0.05,
    schedulerIntervalMs: 1000,
    // Long enough for a 1.2 MB answer to arrive on a loaded machine; hangs still cost seconds, not minutes.
    geminiTimeoutMs: 5000,
    // The reconciler acts after 20 s of standing still (120 s by default), so its e2e tests are quick.
    reconcileAfterMs: 20_000,
    // The fixture lists 25 models (52,360 RPM together) and each queue's concurrent dispatches are
    // its RPM's share of the worker's slots: at 2 × 200, a 600-RPM model's queue had 4, too few for
    // 10 deliveries a second once a loaded machine makes each take over 400 ms (a CI run's three-step
    // pipeline ran at a third of its quota). 2 × 1,000 gives it 22 (the comparison bench sizes its worker so too).
    workerConcurrency: 1000,
    // A batch pending this long goes back to the realtime path (a day by default).
    batchPendingDeadlineMs: 10_000,
    standIn: { latency: { '*': { meanMs: 40, jitterMs: 30 } }, faults: { timeoutMs: 4000 } },
    // Two bucket owners (test/e2e/hostile-tenant-bucket.test.ts), and caps a test can pass cheaply
    // that every other bucket file stays under (20,000 lines, a 256 MiB gzip bomb).
    bucketOwners: ['alice@example.com', 'bob@example.com'],
    bucketCaps: { maxLines: 25_000, maxBytes: 320 * 1024 * 1024 },
    // No response cache: files send the same prompts in many jobs and count Gemini's calls; the
    // cache's own e2e file (response-cache.test.ts) boots a stack of its own with it on.
    responseCacheTtlHours: 0,
    logLevel: process.env.E2E_LOG_LEVEL ?? 'silent',
  });
  project.provide('firestoreEmulatorHost', host);
  project.provide('stack', stack.info);
  return async () => {
    await stack.close();
    await firestore?.stop();
  };
}
