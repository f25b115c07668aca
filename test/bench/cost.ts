import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createJobsClient, type JobsClient } from '../../functions/api/client.js';
import type { CreateJobRequest } from '../../functions/api/job-request.js';
import type { JobView } from '../../functions/api/jobs.js';
import { startFirestoreEmulator } from '../../infra/local/firestore.js';
import { freePort } from '../../infra/local/ports.js';
import { PROJECT_ROOT, type Stack, startStack } from '../../infra/local/stack.js';
import { startFirestoreMeter } from '../../infra/local/usage/firestore-meter.js';
import { priceCloudUsage, readCloudPrices } from '../../infra/local/usage/price.js';
import { benchFolders, resultsHead } from './compare-stack.js';
import { type CaseResult, costTable, flexWaitNote } from './cost-report.js';
import { readMeters, usageBetween } from './cost-usage.js';

/**
 * `npm run bench:cost`: what the machinery costs beside what Gemini costs, per 1,000 prompts. One
 * local cloud (strict profile, response cache on) runs the same kind of prompt set four ways:
 * standard realtime, Flex, the Batch API, and the standard set again, answered by the response
 * cache. Around each job every meter of the local cloud is read (cost-usage.ts): Cloud Tasks
 * operations, function invocations and billed instance time, Firestore documents read, written and
 * deleted (a counting proxy in front of the emulator), Cloud Storage operations by class; priced at
 * infra/cloud-prices.json's list prices (infra/local/usage/price.ts). Gemini's cost is the job
 * view's `costUsd`. Writes bench/results/cost.json and cost.md (a run of other than 1,000 prompts,
 * `COST_N`, goes to .local/cost/ instead).
 *
 * Waits are scaled down as the other benchmarks do: the stand-in answers in 300 ms, Flex waits
 * 60–900 ms instead of 1–15 minutes, the Batch API runs a batch in about a second, and the
 * scheduler ticks every 2 s during the Batch case (once a minute, as deployed, otherwise).
 */
const N = Number(process.env.COST_N ?? 1000);
const MODEL = 'gemini-2.5-flash';
const LATENCY_MS = 300;
/** How often the status is polled: the polls are part of what is counted (ingest, Firestore reads). */
const POLL_MS = 2000;
/** After a job ends, trailing work (finish watch, cache writes, exports) gets this long to land. */
const SETTLE_MS = 3000;

function benchQuotas() {
  const quotas = JSON.parse(readFileSync(join(PROJECT_ROOT, 'infra', 'quotas.json'), 'utf8'));
  // The model's prices as deployed; its limits raised so 1,000 prompts take seconds, not minutes.
  quotas.models = { [MODEL]: { ...quotas.models[MODEL], rpm: 6000, tpm: 40_000_000, rpd: null } };
  quotas.defaultModel = MODEL;
  quotas.serviceTiers.flex = { ...quotas.serviceTiers.flex, minBackoffMs: 500, maxBackoffMs: 5000 };
  return quotas;
}

const prompts = (tag: string) =>
  Array.from({ length: N }, (_, i) => `Cost benchmark ${tag} prompt ${i}: answer in one short sentence.`);

interface CaseSpec {
  name: string;
  body: CreateJobRequest;
  /** Drive scheduler ticks every 2 s while the job runs (the Batch API path moves on ticks). */
  ticks?: boolean;
}

async function runCase(
  spec: CaseSpec,
  ctx: {
    stack: Stack;
    jobs: JobsClient;
    read: () => ReturnType<typeof readMeters>;
    tick: () => Promise<void>;
  },
): Promise<CaseResult> {
  const before = await ctx.read();
  const t0 = Date.now();
  const created = await ctx.jobs.submit(spec.body);
  let polls = 0;
  let view: JobView;
  for (;;) {
    if (spec.ticks) await ctx.tick();
    view = await ctx.jobs.get(created.id);
    polls += 1;
    if (view.status !== 'queued' && view.status !== 'running') break;
    if (Date.now() - t0 > 600_000)
      throw new Error(`${spec.name}: job ${created.id} still ${view.status} after 10 min`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const wallMs = Date.now() - t0;
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const { usage, detail } = usageBetween(await ctx.read(), before);
  return {
    name: spec.name,
    items: view.counts.total,
    succeeded: view.counts.succeeded,
    wallMs,
    statusPolls: polls,
    geminiUsd: view.costUsd,
    tiers: view.tiers ?? {},
    cacheHits: view.cache?.hits ?? 0,
    usage,
    detail,
    cost: priceCloudUsage(usage, readCloudPrices()),
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadAtStart = loadavg()[0]!;
  const { scratch, outDir, quotasFile } = benchFolders('cost', N === 1000, benchQuotas());
  const firestore = await startFirestoreEmulator();
  const meter = await startFirestoreMeter(firestore.host);
  const usagePort = await freePort();
  process.env.FANOUT_HOST_USAGE_PORT = String(usagePort);
  let stack: Stack | undefined;
  try {
    stack = await startStack({
      projectId: 'fanout-cost',
      portBase: 0,
      firestoreHost: meter.host,
      quotasFile,
      profile: 'strict',
      schedulerIntervalMs: 60_000,
      geminiTimeoutMs: 10_000,
      responseCacheTtlHours: 24,
      logLevel: 'warn',
      standIn: {
        latency: { '*': LATENCY_MS },
        serviceTiers: { flex: { minMs: 60_000, maxMs: 900_000, timeScale: 0.001 } },
      },
    });
    const s = stack;
    const jobs = createJobsClient(s.info.ingestUrl);
    const read = () => readMeters(s, meter, usagePort);
    const tick = async () => {
      const res = await fetch(s.info.tickUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${s.issuer.idToken(s.info.schedulerServiceAccount, s.info.tickUrl)}`,
        },
        body: '{}',
      });
      await res.body?.cancel();
    };
    // Warm the functions and emulators first (JIT, connections): the cases measure steady work.
    const warm = await jobs.submit({
      model: MODEL,
      mode: 'realtime',
      prompts: prompts('warm').slice(0, 100),
    });
    await jobs.waitFor(warm.id, { timeoutMs: 300_000, intervalMs: 1000 });
    const standard = prompts('standard');
    const cases: CaseSpec[] = [
      { name: 'standard', body: { model: MODEL, mode: 'realtime', prompts: standard } },
      { name: 'flex', body: { model: MODEL, mode: 'flex', prompts: prompts('flex') } },
      { name: 'batch', body: { model: MODEL, mode: 'batch', prompts: prompts('batch') }, ticks: true },
      { name: 'cached re-run', body: { model: MODEL, mode: 'realtime', prompts: standard } },
    ];
    const results: CaseResult[] = [];
    for (const spec of cases) {
      const result = await runCase(spec, { stack: s, jobs, read, tick });
      console.log(
        `${spec.name}: ${result.succeeded}/${result.items} in ${(result.wallMs / 1000).toFixed(1)} s`,
      );
      results.push(result);
    }
    const prices = readCloudPrices();
    const out = {
      ...resultsHead(started, loadAtStart),
      prompts: N,
      model: MODEL,
      geminiLatencyMs: LATENCY_MS,
      pricesRetrieved: prices.retrieved,
      cases: results,
    };
    writeFileSync(join(outDir, 'cost.json'), `${JSON.stringify(out, null, 2)}\n`);
    const table = `${costTable(results, N)}\n\n${flexWaitNote(prices)}`;
    writeFileSync(join(outDir, 'cost.md'), `${table}\n`);
    console.log(table);
    console.log(`written: ${join(outDir, 'cost.json')}, cost.md (scratch ${scratch})`);
  } finally {
    await stack?.close();
    await meter.close();
    await firestore.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
