import { batchLineError } from '../core/batch.js';
import { costUsd, type UsageMetadata, usageFrom } from '../core/cost.js';
import type { JobRecord } from '../core/jobs.js';
import { partCounterId } from '../lifecycle/create.js';
import { fitsInline } from '../lifecycle/lifecycle.js';
import type { BatchInfo } from '../platform/gemini-batch.js';
import type { Logger } from '../platform/logger.js';
import type { BatchRun } from '../platform/store/batch-runs.js';
import type { StoredOutcome } from '../platform/store/items.js';
import { advance, type BatchCycleDeps, fallBack, removeFiles } from './runs.js';

/** Output lines joined and written per round: one read of their items, one bulk of writes. */
const ROUND = 500;

/**
 * Collects a succeeded batch: streams its responses file (order not guaranteed: lines are joined
 * by key, the item id), and writes each outcome once — only on an item still pending and still in
 * the batch, so a line seen twice, a tick redoing the work, or a cancel meanwhile changes nothing
 * twice. Answers are priced at the batch rate. Items the file did not answer go back like a failed
 * batch's. The run's totals are then counted by aggregation into its own counter document.
 */
export async function collectRun(
  run: BatchRun,
  job: JobRecord,
  info: BatchInfo,
  deps: BatchCycleDeps,
  log: Logger,
  /** Why the items without a line go back (a batch that ended early: only part of it answered). */
  missingReason?: string,
): Promise<void> {
  const quota = deps.quotas.models[job.model];
  const price = quota?.price ?? { inputPerMillion: 0, outputPerMillion: 0 };
  const discount = deps.quotas.batchDiscount;
  let round: Array<{ key: string; line: Record<string, unknown> }> = [];
  let written = 0;
  let lines = 0;
  const flush = async () => {
    const heads = await deps.batch.items.heads(
      job.id,
      round.map((r) => r.key),
    );
    const writes: Array<{ itemId: string; version: string; outcome: StoredOutcome }> = [];
    for (const { key, line } of round) {
      const head = heads.get(key);
      if (head?.state !== 'pending' || head.batchPart !== run.part) continue;
      writes.push({ itemId: key, version: head.version, outcome: await outcomeOf(key, line) });
    }
    round = [];
    // The next round is parsed and read while this one's writes land; two rounds at most in flight.
    const settling = deps.batch.items.settleMany(job.id, writes).then((n) => (written += n));
    // Marked handled now; its failure is thrown where it is awaited (never an unhandled rejection).
    settling.catch(() => undefined);
    inflight.push(settling);
    if (inflight.length >= 2) await inflight.shift();
  };
  const inflight: Array<Promise<unknown>> = [];
  const outcomeOf = async (itemId: string, line: Record<string, unknown>): Promise<StoredOutcome> => {
    if (!('response' in line)) return { state: 'failed', error: batchLineError(line.error) };
    const response = line.response as { usageMetadata?: UsageMetadata };
    const usage = usageFrom(response?.usageMetadata);
    const cost = costUsd(usage, price, discount);
    const json = JSON.stringify(response);
    if (fitsInline(json)) return { state: 'succeeded', responseJson: json, usage, costUsd: cost };
    const name = await deps.lifecycle.offloadAnswer({ jobId: job.id, itemId }, response);
    return { state: 'succeeded', responseObject: name, usage, costUsd: cost };
  };

  if (info.responsesFile) {
    for await (const text of deps.api.responseLines(info.responsesFile)) {
      lines++;
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        log.warn({ event: 'batch.bad_output_line' }, 'a line of the responses file is not JSON; skipped');
        continue;
      }
      if (typeof line.key !== 'string') continue;
      round.push({ key: line.key, line });
      if (round.length >= ROUND) await flush();
    }
    if (round.length > 0) await flush();
    await Promise.all(inflight);
  }
  log.info({ event: 'batch.collected', lines, written }, 'batch results collected');

  const counts = await deps.batch.items.countPart(job.id, run.part);
  const settled = (counts.succeeded ?? 0) + (counts.failed ?? 0) + (counts.cancelled ?? 0);
  if (settled < run.items) {
    // Lines missing from the output: those items go back like a failed batch's (which deletes the input).
    await removeFiles([info.responsesFile], deps);
    const reason = missingReason ?? `the batch returned no line for ${run.items - settled} items`;
    await fallBack(run, job, reason, deps, log, {
      upstream: info.state,
      stats: info.stats,
    });
    return;
  }
  await deps.counters.put(job.id, partCounterId(run.part), counts);
  await advance(
    run,
    { state: 'collected', upstream: info.state, stats: info.stats, leaseUntilMs: null },
    deps,
  );
  await removeFiles([run.fileName, info.responsesFile], deps);
  await deps.lifecycle.finishIfDone(job.id, log);
}
