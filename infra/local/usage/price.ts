import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

/**
 * What the machinery of one run is billed for, priced at the list prices of `infra/cloud-prices.json`.
 * Pure: counts in, dollars out. The counts come from the local cloud (the cost benchmark,
 * test/bench/cost.ts, reads them): Cloud Tasks operations, function invocations and billed instance
 * time, Firestore documents read/written/deleted, Cloud Storage operations by class. Free tiers are
 * not subtracted (a project past them pays every operation); a price the file leaves `null` is
 * reported in `unpriced` instead of being taken as zero.
 */

const perFunction = z.object({
  vcpu: z.number().positive(),
  memoryGib: z.number().positive(),
  concurrency: z.number().int().positive(),
});

/** The schema of `infra/cloud-prices.json` (only the fields the pricing reads are checked). */
export const cloudPricesSchema = z.object({
  retrieved: z.string(),
  cloudTasks: z.object({ perMillionOperations: z.number().nonnegative(), source: z.string() }),
  cloudRunFunctions: z.object({
    perMillionInvocations: z.number().nonnegative(),
    perVcpuSecond: z.number().nonnegative(),
    perGibSecond: z.number().nonnegative(),
    billingGranularityMs: z.number().positive(),
    source: z.string(),
    functions: z.record(z.string(), z.union([perFunction, z.string()])),
  }),
  firestore: z.object({
    per100kReads: z.number().nonnegative().nullable(),
    per100kWrites: z.number().nonnegative().nullable(),
    per100kDeletes: z.number().nonnegative().nullable(),
    source: z.string(),
  }),
  cloudStorage: z.object({
    per10kClassA: z.number().nonnegative().nullable(),
    per10kClassB: z.number().nonnegative().nullable(),
    source: z.string(),
  }),
});

export type CloudPrices = z.infer<typeof cloudPricesSchema>;

/** Reads and checks a prices file (`infra/cloud-prices.json` by default). */
export function readCloudPrices(
  file = resolve(import.meta.dirname, '..', '..', 'cloud-prices.json'),
): CloudPrices {
  return cloudPricesSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
}

/** One function's use in a run. */
export interface FunctionUsage {
  /** Requests (or events) it served. */
  invocations: number;
  /**
   * Instance time billed under request-based billing: per instance, the time it handled at least
   * one request, each such stretch rounded up to the billing granularity.
   */
  billedSeconds: number;
  /** CPU the instances really spent on its requests (informative: Cloud Run bills `billedSeconds`). */
  cpuSeconds: number;
}

/** What the local cloud counted for one run. */
export interface CloudUsage {
  /** Cloud Tasks billable operations: API calls plus push delivery attempts. */
  tasks: { operations: number; byKind: Record<string, number> };
  functions: Record<string, FunctionUsage>;
  firestore: { reads: number; writes: number; deletes: number };
  storage: { classA: number; classB: number; free: number };
}

/** The price of a {@link CloudUsage}, per service, in USD. */
export interface CloudCost {
  tasksUsd: number;
  functionsUsd: Record<
    string,
    { invocationsUsd: number; cpuUsd: number; memoryUsd: number; totalUsd: number }
  >;
  firestoreUsd: number;
  storageUsd: number;
  totalUsd: number;
  /** Counts with no price in the file (e.g. `firestore.deletes`), left out of the totals. */
  unpriced: string[];
}

/** `count / unit × price`, or 0 (and the name noted in `unpriced`) when the file has no price. */
function priced(count: number, unit: number, price: number | null, name: string, unpriced: string[]): number {
  if (price === null) {
    if (count > 0) unpriced.push(name);
    return 0;
  }
  return (count / unit) * price;
}

function priceFunctions(usage: CloudUsage, prices: CloudPrices): CloudCost['functionsUsd'] {
  const run = prices.cloudRunFunctions;
  const out: CloudCost['functionsUsd'] = {};
  for (const [name, use] of Object.entries(usage.functions)) {
    const size = run.functions[name];
    if (size === undefined || typeof size === 'string') {
      throw new Error(`cloud-prices.json gives no vCPU and memory for the function ${name}`);
    }
    const invocationsUsd = (use.invocations / 1e6) * run.perMillionInvocations;
    const cpuUsd = use.billedSeconds * size.vcpu * run.perVcpuSecond;
    const memoryUsd = use.billedSeconds * size.memoryGib * run.perGibSecond;
    out[name] = { invocationsUsd, cpuUsd, memoryUsd, totalUsd: invocationsUsd + cpuUsd + memoryUsd };
  }
  return out;
}

/** Prices one run's counts at the list prices. */
export function priceCloudUsage(usage: CloudUsage, prices: CloudPrices): CloudCost {
  const unpriced: string[] = [];
  const tasksUsd = (usage.tasks.operations / 1e6) * prices.cloudTasks.perMillionOperations;
  const functionsUsd = priceFunctions(usage, prices);
  const fs = prices.firestore;
  const firestoreUsd =
    priced(usage.firestore.reads, 1e5, fs.per100kReads, 'firestore.reads', unpriced) +
    priced(usage.firestore.writes, 1e5, fs.per100kWrites, 'firestore.writes', unpriced) +
    priced(usage.firestore.deletes, 1e5, fs.per100kDeletes, 'firestore.deletes', unpriced);
  const gcs = prices.cloudStorage;
  const storageUsd =
    priced(usage.storage.classA, 1e4, gcs.per10kClassA, 'storage.classA', unpriced) +
    priced(usage.storage.classB, 1e4, gcs.per10kClassB, 'storage.classB', unpriced);
  const functionsTotal = Object.values(functionsUsd).reduce((sum, f) => sum + f.totalUsd, 0);
  return {
    tasksUsd,
    functionsUsd,
    firestoreUsd,
    storageUsd,
    totalUsd: tasksUsd + functionsTotal + firestoreUsd + storageUsd,
    unpriced,
  };
}

/**
 * Billed seconds of one instance's request stretches under request-based billing: each stretch
 * (from the first request in to the last one out) rounded up to `granularityMs`.
 */
export function billedSeconds(stretchesMs: number[], granularityMs: number): number {
  return stretchesMs.reduce((sum, ms) => sum + Math.ceil(ms / granularityMs) * granularityMs, 0) / 1000;
}

/**
 * What waiting on Gemini costs in worker instance time, when the wait is longer than the local
 * cloud can show (Flex answers in 1–15 minutes; the benchmark scales that down): under
 * request-based billing, `items` requests each in flight `latencySeconds`, `concurrency` of them
 * sharing an instance, keep instances billed `items × latencySeconds / concurrency` seconds at
 * least (full instances; fewer in flight per instance bill more).
 */
export function waitingCostUsd(
  items: number,
  latencySeconds: number,
  fn: { vcpu: number; memoryGib: number; concurrency: number },
  prices: CloudPrices,
): number {
  const seconds = (items * latencySeconds) / fn.concurrency;
  const run = prices.cloudRunFunctions;
  return seconds * (fn.vcpu * run.perVcpuSecond + fn.memoryGib * run.perGibSecond);
}

/** The worker's size from the prices file (its vCPU, memory and concurrency as deployed). */
export function workerSize(prices: CloudPrices): { vcpu: number; memoryGib: number; concurrency: number } {
  const worker = prices.cloudRunFunctions.functions.worker;
  if (worker === undefined || typeof worker === 'string')
    throw new Error('cloud-prices.json: no worker size');
  return worker;
}
