import {
  type CloudCost,
  type CloudPrices,
  type CloudUsage,
  waitingCostUsd,
  workerSize,
} from '../../infra/local/usage/price.js';

/** One case of the cost benchmark, as written to bench/results/cost.json. */
export interface CaseResult {
  name: string;
  items: number;
  succeeded: number;
  wallMs: number;
  /** `GET /jobs/{id}` calls made while waiting (counted in ingest's invocations and Firestore reads). */
  statusPolls: number;
  /** Gemini's bill for the job: the job view's `costUsd`. */
  geminiUsd: number;
  tiers: Record<string, unknown>;
  cacheHits: number;
  usage: CloudUsage;
  detail: {
    firestoreCalls: Record<string, number>;
    storageByMethod: Record<string, number>;
    idleCpuSeconds: number;
  };
  cost: CloudCost;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const usd = (n: number) => (n === 0 ? '$0' : n < 0.0001 ? `$${n.toExponential(1)}` : `$${n.toFixed(4)}`);

/**
 * The README's table: per 1,000 prompts (counts of a run of `prompts` scaled), Gemini's cost and
 * the machinery's, service by service, each as its counts and their price.
 */
export function costTable(results: CaseResult[], prompts: number): string {
  const k = 1000 / prompts;
  const rows = results.map((r) => {
    const u = r.usage;
    const fns = Object.values(u.functions);
    const invocations = fns.reduce((a, f) => a + f.invocations, 0);
    const billed = fns.reduce((a, f) => a + f.billedSeconds, 0);
    const cpu = fns.reduce((a, f) => a + f.cpuSeconds, 0);
    const fnUsd = Object.values(r.cost.functionsUsd).reduce((a, f) => a + f.totalUsd, 0);
    const share = r.geminiUsd > 0 ? `${Math.round((r.cost.totalUsd / r.geminiUsd) * 100)}%` : '–';
    return [
      r.name,
      usd(r.geminiUsd * k),
      `${int(u.tasks.operations * k)} ops, ${usd(r.cost.tasksUsd * k)}`,
      `${int(invocations * k)} calls, ${(billed * k).toFixed(1)} s billed (${(cpu * k).toFixed(1)} s CPU), ${usd(fnUsd * k)}`,
      `${int(u.firestore.reads * k)} / ${int(u.firestore.writes * k)} / ${int(u.firestore.deletes * k)}, ${usd(r.cost.firestoreUsd * k)}`,
      `${int(u.storage.classA * k)} / ${int(u.storage.classB * k)}, ${usd(r.cost.storageUsd * k)}`,
      usd(r.cost.totalUsd * k),
      share,
    ];
  });
  const head = [
    'per 1,000 prompts',
    'Gemini',
    'Cloud Tasks',
    'functions',
    'Firestore reads / writes / deletes',
    'Storage class A / B',
    'machinery',
    'machinery / Gemini',
  ];
  return [head, head.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

/**
 * The line under the table: Flex's waits run scaled down here, so the worker time they cost at
 * Flex's real latency (1–15 minutes) is computed, not measured (price.ts `waitingCostUsd`).
 */
export function flexWaitNote(prices: CloudPrices): string {
  const worker = workerSize(prices);
  const at = (minutes: number) => usd(waitingCostUsd(1000, minutes * 60, worker, prices));
  return (
    `Flex's waits are scaled down here (60–900 ms for 1–15 minutes). At its real latency, 1,000 Flex ` +
    `requests keep worker instances (${worker.vcpu} vCPU, ${worker.memoryGib} GiB, ${worker.concurrency} ` +
    `requests each) billed for at least ${at(1)} (1 minute each) to ${at(15)} (15 minutes each) more.`
  );
}
