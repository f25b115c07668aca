import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import { itemIdForIndex, type NewItem } from '../../functions/core/jobs.js';
import { createStores, type Stores } from '../../functions/platform/store/index.js';
import { startFirestoreEmulator } from '../../infra/local/firestore.js';
import { PROJECT_ROOT } from '../../infra/local/stack.js';

/**
 * The store's floor (issue 22's CPU per item): what the Firestore work every item needs costs on its
 * own, with no functions, queue or Gemini around it. A fresh Firestore emulator; one job of
 * `FLOOR_N` items (default 4,000); each item read with its job, leased and its outcome written
 * (with its counter), exactly the calls a delivery makes, `k` items at a time side by side (as a
 * task of k items does: k = 1 sends three requests an item, larger k lets the store send one for
 * the k). CPU of the emulator's JVM (/proc) and of this process (the Firestore client), per item.
 *
 *   npx tsx test/bench/store-floor.ts          (FLOOR_K=1,8,32)
 *
 * Writes bench/results/store-floor.json.
 */
const N = Number(process.env.FLOOR_N ?? 4000);
const KS = (process.env.FLOOR_K ?? '1,8,32').split(',').map(Number);
const TICKS_PER_SECOND = 100;

function jvmTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function newItems(n: number): NewItem[] {
  return Array.from({ length: n }, (_, i) => ({
    id: itemIdForIndex(i),
    index: i,
    key: String(i),
    request: { contents: [{ role: 'user', parts: [{ text: `prompt ${i} `.padEnd(60, 'x') }] }] },
    estimatedTokens: 15,
  }));
}

async function deliver(stores: Stores, jobId: string, index: number): Promise<void> {
  const [item, job] = await stores.items.getWithJob(jobId, itemIdForIndex(index));
  if (!item || !job) throw new Error(`item ${index} missing`);
  const ref = { jobId, itemId: item.id, version: item.version, shards: job.counterShards };
  const leased = await stores.items.lease(ref, 60_000, Date.now());
  if (!leased) throw new Error(`item ${index} not leased`);
  const written = await stores.items.settle(
    { ...ref, version: leased.version },
    {
      state: 'succeeded',
      response: { candidates: [{ content: { parts: [{ text: `answer ${index}` }] } }] },
      usage: { promptTokens: 15, outputTokens: 5 },
      costUsd: 0.00001,
      estimatedTokens: 15,
    },
  );
  if (!written) throw new Error(`item ${index} not written`);
}

async function main(): Promise<void> {
  const emulator = await startFirestoreEmulator();
  const db = new Firestore({ projectId: 'store-floor', host: emulator.host, ssl: false });
  const rows = [];
  try {
    for (const k of KS) {
      const stores = createStores(db, { collectionPrefix: `k${k}-` });
      const jobId = `floor-k${k}`;
      await stores.items.createMany(jobId, newItems(N));
      await stores.jobs.create(
        { id: jobId, model: 'm', mode: 'realtime', total: N, source: 'api', counterShards: 8 },
        Date.now() + 60_000,
      );
      // A short warm-up of the same calls (the JVM's JIT, the client's channel), not measured.
      for (let i = 0; i < 200; i += k)
        await Promise.all(
          Array.from({ length: Math.min(k, 200 - i) }, (_, j) => deliver(stores, jobId, i + j)),
        );
      const jvm0 = jvmTicks(emulator.pid!);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 200; i < N; i += k)
        await Promise.all(
          Array.from({ length: Math.min(k, N - i) }, (_, j) => deliver(stores, jobId, i + j)),
        );
      const wallS = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const n = N - 200;
      const totals = await stores.counters.totals(jobId, N, 8);
      if (totals.counts.succeeded !== N) throw new Error(`counted ${totals.counts.succeeded} of ${N}`);
      const row = {
        k,
        items: n,
        emulatorMsPerItem:
          Math.round((((jvmTicks(emulator.pid!) - jvm0) / TICKS_PER_SECOND) * 1e5) / n) / 100,
        clientMsPerItem: Math.round(((cpu.user + cpu.system) / 1000 / n) * 100) / 100,
        itemsPerS: Math.round(n / wallS),
      };
      rows.push(row);
      console.log(row);
    }
  } finally {
    await db.terminate();
    await emulator.stop();
  }
  const out = {
    date: new Date().toISOString(),
    loadAverage: loadavg(),
    command: `FLOOR_N=${N} FLOOR_K=${KS.join(',')} npx tsx test/bench/store-floor.ts`,
    notes:
      'Per item: read with its job, lease, outcome with its counter (the store calls of a delivery), k items side by side, on a fresh Firestore emulator; CPU of the emulator JVM and of this process (the Firestore client) per item, after a 200-item warm-up.',
    rows,
  };
  writeFileSync(
    join(PROJECT_ROOT, 'bench', 'results', 'store-floor.json'),
    `${JSON.stringify(out, null, 2)}\n`,
  );
}

await main();
