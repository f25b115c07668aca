import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../infra/local/stack.js';
import type { ProcessReport } from './scale-procs.js';

/**
 * CPU and Cloud Tasks operations per item with one item a task against several (issue 22): the
 * scale benchmark (test/bench/scale.ts: one job on one model, strict local cloud, CPU of every
 * process read from /proc) run once per k of `MULTI_K` (default `1,8`) with `ITEMS_PER_TASK=k`,
 * in the same conditions one after the other, and each run's stack log read for the tasks that
 * carried the items. Writes bench/results/multi-item.json and prints a table.
 *
 *   npx tsx test/bench/multi-item.ts            (MULTI_N=5000 prompts at MULTI_RPM=30000)
 *
 * scale.ts's own settings pass through (e.g. `SCALE_CAP_FACTOR=30` on a busy machine, so no run
 * stops at its cap).
 *
 * Cloud Tasks operations per item: one CreateTask per task and one dispatch per attempt (first
 * tries and retries; the item lines of a delivery carry its task name and attempt), over the items;
 * the few control tasks (enqueue pages, finish watch) are left out, as they do not grow with k.
 */
const KS = (process.env.MULTI_K ?? '1,8').split(',').map(Number);
const N = process.env.MULTI_N ?? '5000';
const RPM = process.env.MULTI_RPM ?? '30000';
const SCRATCH = join(PROJECT_ROOT, '.local', 'scale');

interface ScaleOut {
  measures: Array<{
    n: number;
    makespanS: number;
    limitS: number;
    ratio: number;
    runs: Array<{
      upstream: { rejected429: number; answeredAgain: number };
      lost: number;
      succeeded: number;
    }>;
    procs: { cpuS: ProcessReport['cpuS'] };
  }>;
}

/** Tasks and deliveries that carried items, from a stack log's item lines. */
export function taskOps(logText: string): { items: number; tasks: number; deliveries: number } {
  const tasks = new Set<string>();
  const deliveries = new Set<string>();
  const items = new Set<string>();
  for (const line of logText.split('\n')) {
    if (!line.includes('"event":"item.')) continue;
    let entry: { task?: string; attempt?: number; jobId?: string; itemId?: string; event?: string };
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (!entry.task || !entry.jobId) continue;
    tasks.add(entry.task);
    deliveries.add(`${entry.task}#${entry.attempt ?? 1}`);
    if (entry.event === 'item.succeeded') items.add(`${entry.jobId}/${entry.itemId}`);
  }
  return { items: items.size, tasks: tasks.size, deliveries: deliveries.size };
}

function runScale(k: number): { scale: ScaleOut; ops: ReturnType<typeof taskOps> } {
  const env = {
    ...process.env,
    ITEMS_PER_TASK: String(k),
    SCALE_N: N,
    SCALE_RPM: RPM,
    SCALE_SHARED_MODELS: '0',
  };
  process.stderr.write(`k = ${k}: npx tsx test/bench/scale.ts with SCALE_N=${N} SCALE_RPM=${RPM}\n`);
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(PROJECT_ROOT, 'test', 'bench', 'scale.ts')],
    {
      cwd: PROJECT_ROOT,
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  if (run.status !== 0) throw new Error(`scale.ts exited with ${run.status}`);
  const scale = JSON.parse(readFileSync(join(SCRATCH, 'scale.json'), 'utf8')) as ScaleOut;
  // The warm-up job's items are in the log too: only the measured job's count (the last job).
  return { scale, ops: taskOps(readFileSync(join(SCRATCH, 'stack.log'), 'utf8')) };
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

function main(): void {
  const rows = KS.map((k) => {
    const { scale, ops } = runScale(k);
    const m = scale.measures.at(-1)!;
    const cpu = m.procs.cpuS;
    const total = cpu.functions + cpu.stackProcess + cpu.firestore;
    // Per item answered in the measured window (a run stopped at its cap answered fewer than n).
    const done = Math.max(
      1,
      m.runs.reduce((a, r) => a + r.succeeded, 0),
    );
    return {
      itemsPerTask: k,
      n: m.n,
      succeeded: done,
      makespanS: m.makespanS,
      limitS: m.limitS,
      ratio: m.ratio,
      rejected429: m.runs.reduce((a, r) => a + r.upstream.rejected429, 0),
      lost: m.runs.reduce((a, r) => a + r.lost, 0),
      cpuMsPerItem: {
        total: round((total * 1000) / done),
        functions: round((cpu.functions * 1000) / done),
        firestore: round((cpu.firestore * 1000) / done),
        /** Of firestore: the emulator JVM's JIT compiling its own code (a fresh JVM each run). */
        firestoreJit: round((cpu.firestoreJit * 1000) / done),
        otherEmulators: round((cpu.stackProcess * 1000) / done),
      },
      // Counted over every job of the run (the warm-up's included), per item of them.
      tasksPerItem: round(ops.tasks / ops.items, 3),
      cloudTasksOpsPerItem: round((ops.tasks + ops.deliveries) / ops.items, 3),
    };
  });
  const out = {
    date: new Date().toISOString(),
    loadAverage: loadavg(),
    command: `MULTI_K=${KS.join(',')} MULTI_N=${N} MULTI_RPM=${RPM}${process.env.SCALE_CAP_FACTOR ? ` SCALE_CAP_FACTOR=${process.env.SCALE_CAP_FACTOR}` : ''} npx tsx test/bench/multi-item.ts`,
    notes:
      'One job of N prompts at RPM on one model after a warm-up, strict local cloud, 300 ms stand-in latency (scale.ts), each k run after the other. CPU: seconds of the functions tree, the stack process (Cloud Tasks, Storage, Gemini stand-in) and the Firestore JVM over the measured job, per item. Cloud Tasks ops: CreateTask per task plus dispatch attempts, per item, from the item lines of the stack log.',
    rows,
  };
  writeFileSync(
    join(PROJECT_ROOT, 'bench', 'results', 'multi-item.json'),
    `${JSON.stringify(out, null, 2)}\n`,
  );
  console.table(
    Object.fromEntries(
      rows.map((r) => [
        `k=${r.itemsPerTask}`,
        {
          'CPU ms/item': r.cpuMsPerItem.total,
          functions: r.cpuMsPerItem.functions,
          firestore: r.cpuMsPerItem.firestore,
          'of it JIT': r.cpuMsPerItem.firestoreJit,
          'Tasks ops/item': r.cloudTasksOpsPerItem,
          ratio: r.ratio,
          '429s': r.rejected429,
        },
      ]),
    ),
  );
  console.log('written: bench/results/multi-item.json');
}

if (import.meta.url === `file://${process.argv[1]}`) main();
