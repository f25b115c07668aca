/**
 * A batch job over the fakes, driven tick by tick: the real lifecycle and Batch cycle, the fake
 * stores, a fake Batch API and a clock that moves a minute per tick (as Cloud Scheduler does).
 */

import type { BatchFallback } from '../../../../functions/core/batch.js';
import { itemIdForIndex, type NewItem } from '../../../../functions/core/jobs.js';
import { createLifecycle } from '../../../../functions/lifecycle/lifecycle.js';
import { createLogger } from '../../../../functions/platform/logger.js';
import { batchCycle } from '../../../../functions/tick/batch-api/cycle.js';
import { FakeBatchApi, fakeBatchApiStores } from '../../../helpers/fake-batch.js';
import { FakeDb } from '../../../helpers/fake-stores.js';
import { FakeObjectStore, FakeTaskQueue } from '../../../helpers/fakes.js';
import { testQuotas } from '../../../helpers/test-quotas.js';

export const MODEL = 'gemini-2.5-flash';
export const STALL_MS = 5 * 60_000;
export const PENDING_DEADLINE_MS = 30 * 60_000;
export const TICK_MS = 60_000;

export async function batchWorld(options: { items?: number; onBatchFailure?: BatchFallback } = {}) {
  let now = Date.parse('2026-01-05T10:00:00Z');
  const clock = () => now;
  const logger = createLogger({ level: 'silent' });
  const db = new FakeDb(clock);
  const batch = fakeBatchApiStores(db, clock);
  const tasks = new FakeTaskQueue();
  const objects = new FakeObjectStore();
  const api = new FakeBatchApi();
  const lifecycle = createLifecycle({
    stores: db.stores,
    batch,
    tasks,
    objects,
    logger,
    notify: async () => undefined,
    stallMs: STALL_MS,
    now: clock,
    sleep: async () => undefined,
  });
  const n = options.items ?? 4;
  const text = Array.from(
    { length: n },
    (_, i) => `${JSON.stringify({ key: `k${i}`, prompt: `p${i}` })}\n`,
  ).join('');
  objects.objects.set('staging/job.jsonl', text);
  const jobId = 'job-1';
  const items: NewItem[] = Array.from({ length: n }, (_, i) => ({
    id: itemIdForIndex(i),
    index: i,
    key: `k${i}`,
    request: { contents: [{ role: 'user', parts: [{ text: `p${i}` }] }] },
    estimatedTokens: 10,
    batchPart: 0,
  }));
  await lifecycle.create(
    {
      id: jobId,
      model: MODEL,
      mode: 'batch',
      total: n,
      source: 'api',
      paths: { realtime: 0, batch: n },
      staged: { object: 'staging/job.jsonl' },
      ...(options.onBatchFailure ? { onBatchFailure: options.onBatchFailure } : {}),
    },
    items,
    undefined,
    {
      runs: [
        {
          part: 0,
          fromIndex: 0,
          toIndex: n,
          fromByte: 0,
          toByte: Buffer.byteLength(text),
          items: n,
          tokens: 10 * n,
        },
      ],
    },
  );
  const outcomes = lifecycle.batchOutcomes!;
  const deps = {
    lifecycle,
    runs: batch.runs,
    outcomes,
    api,
    objects,
    tasks,
    quotas: testQuotas(),
    logger,
    pendingDeadlineMs: PENDING_DEADLINE_MS,
    maxStepFailures: 3,
    maxStepMs: 60 * 60_000,
    now: clock,
  };
  const world = {
    db,
    api,
    tasks,
    objects,
    lifecycle,
    jobId,
    deps,
    itemIds: items.map((i) => i.id),
    now: () => now,
    /** One scheduler tick, a minute after the last. */
    async tick() {
      now += TICK_MS;
      return batchCycle(deps);
    },
    /** Moves the clock `ms` on without a tick. */
    skip(ms: number) {
      now += ms;
    },
    async ticks(count: number) {
      for (let k = 0; k < count; k++) await world.tick();
    },
    /** The job's one run. */
    run: () => [...batch.runs.runs.values()][0]!,
    item: (i: number) => db.item(jobId, itemIds[i]!)!,
    /** Runs the ticks that upload and create the batch; its name. */
    async submitted(): Promise<string> {
      await world.tick();
      const name = world.run().batchName;
      if (!name) throw new Error(`not submitted: ${world.run().lastError}`);
      return name;
    },
  };
  const itemIds = world.itemIds;
  return world;
}
