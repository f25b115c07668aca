import type { JobRecord } from '../../core/jobs.js';
import type { BatchInfo } from '../../platform/gemini/batch-api.js';
import type { Logger } from '../../platform/logger.js';
import type { BatchRun } from '../../platform/store/batch-runs.js';
import { advance, type BatchCycleDeps, fallBack, partOf, removeFiles } from './run-steps.js';

/**
 * Collects an ended batch's responses file through the lifecycle (each answer written once, priced
 * at the batch rate; see `BatchOutcomes.settleLines`). Items the file did not answer, and (for a job
 * whose batch troubles go to realtime) lines that failed with a transient error, go back like a
 * failed batch's. The responses file is deleted only once the part's outcomes are durable (its
 * totals recorded and the run closed): a tick that stops before that reads it again. A batch that
 * names no responses file fails the step, which a later tick tries again, within the step's bound.
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
  const responses = info.responsesFile;
  if (!responses) throw new Error(`the batch ended ${info.state} but names no responses file`);
  const pricing = {
    price: deps.quotas.models[job.model]?.price ?? { inputPerMillion: 0, outputPerMillion: 0 },
    discount: deps.quotas.batchDiscount,
  };
  const part = partOf(run);
  // Lines that failed with 429/500/503 go back through realtime, which would have retried them;
  // a job that asked to fail a batch's troubles keeps them as its errors.
  const retryTransient = (job.onBatchFailure ?? 'realtime') === 'realtime';
  const lines = deps.api.responseLines(responses);
  const read = await deps.outcomes.settleLines(part, lines, pricing, log, { retryTransient });
  log.info({ event: 'batch.collected', ...read }, 'batch results collected');

  const missing = await deps.outcomes.unanswered(part);
  const ended = { upstream: info.state, stats: info.stats };
  if (missing > 0) {
    const reason =
      missingReason ??
      (read.transient > 0
        ? `${read.transient} batch lines failed with a transient error (429, 500 or 503)` +
          (missing > read.transient ? ` and ${missing - read.transient} had no line` : '')
        : `the batch returned no line for ${missing} items`);
    await fallBack(run, job, reason, deps, log, { patch: ended, files: [responses] });
    return;
  }
  await advance(run, { state: 'collected', ...ended, leaseUntilMs: null }, deps);
  await removeFiles([run.fileName, responses], deps);
  await deps.lifecycle.finishIfDone(job.id, log);
}
