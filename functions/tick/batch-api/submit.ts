/** A staged run's step: upload its input and create its batch (never two), or send its items back. */
import type { JobRecord } from '../../core/jobs.js';
import { requestLimitsFor } from '../../core/quotas.js';
import { GeminiCallError } from '../../platform/gemini/client.js';
import type { Logger } from '../../platform/logger.js';
import type { BatchRun } from '../../platform/store/batch-runs.js';
import { advance, type BatchCycleDeps, fallBack, lease, type StepOutcome } from './run-steps.js';
import { stagedLines } from './staged-lines.js';

/** The step of a `staged` run in `batchCycle` (see there): it leases the run first. */
export async function submitRun(
  run: BatchRun,
  job: JobRecord,
  deps: BatchCycleDeps,
  log: Logger,
): Promise<StepOutcome> {
  const now = (deps.now ?? Date.now)();
  let held = await lease(run, deps, now);
  if (!held) return undefined;
  if (held.createStartedMs !== null) {
    // A tick started creating this batch and stopped: it may exist upstream. Never create two.
    for await (const b of deps.api.listBatches()) {
      if (b.displayName !== held.displayName) continue;
      await advance(
        held,
        {
          state: 'running',
          batchName: b.name,
          createdAtMs: now,
          upstream: b.state,
          stats: b.stats,
          leaseUntilMs: null,
        },
        deps,
      );
      await deps.lifecycle.markRunning(job.id);
      log.warn({ event: 'batch.adopted', batch: b.name }, 'found the batch an earlier tick created');
      return 'submitted';
    }
  }
  if (!held.fileName) {
    let file: { name: string; sizeBytes: number };
    try {
      file = await deps.api.uploadJsonl(
        stagedLines(held, job, deps.objects, {
          limits: requestLimitsFor(deps.quotas, job.model),
          model: job.model,
        }),
        {
          displayName: held.displayName,
        },
      );
    } catch (err) {
      const refused = permanentFailure(err);
      if (!refused) throw err;
      // Trying again next tick would fail the same way: the items go back now.
      await fallBack(held, job, `the batch input could not be uploaded: ${refused}`, deps, log);
      return 'fellBack';
    }
    held = await advance(held, { fileName: file.name }, deps);
    log.info({ event: 'batch.uploaded', file: file.name, bytes: file.sizeBytes }, 'batch input uploaded');
  }
  // A create started before (its answer lost) and its batch not in the list: this create may make a
  // second one, once the first shows up. The run remembers, and ticks cancel the twin.
  const ambiguous = held.createStartedMs !== null;
  held = await advance(held, { createStartedMs: now, ...(ambiguous ? { ambiguousCreate: true } : {}) }, deps);
  try {
    const info = await deps.api.createBatch(job.model, held.fileName!, held.displayName);
    await advance(
      held,
      {
        state: 'running',
        batchName: info.name,
        createdAtMs: now,
        upstream: info.state,
        stats: info.stats,
        leaseUntilMs: null,
      },
      deps,
    );
    await deps.lifecycle.markRunning(job.id);
    log.info({ event: 'batch.created', batch: info.name, items: held.items }, 'batch created');
    return 'submitted';
  } catch (err) {
    if (err instanceof GeminiCallError && err.httpStatus === 429) {
      // Too many batches, or the model's enqueued tokens are at their cap: nothing was created.
      // Waiting is bounded like a pending batch: past the deadline the items go back. A wait behind
      // the job's own batches still in flight (the parts it was split into for that cap) is not
      // counted: those hand their tokens back as they end, and have deadlines of their own.
      const ownInFlight = (await deps.runs.listForJob(job.id)).some(
        (r) => r.id !== held.id && r.state === 'running',
      );
      const since = ownInFlight ? now : (held.deferredSinceMs ?? now);
      if (now - since > deps.pendingDeadlineMs) {
        await fallBack(
          held,
          job,
          `Gemini refused the batch with 429 for ${Math.round((now - since) / 1000)} s`,
          deps,
          log,
        );
        return 'fellBack';
      }
      await advance(held, { createStartedMs: null, leaseUntilMs: null, deferredSinceMs: since }, deps);
      log.warn(
        { event: 'batch.create_deferred', err: err.message },
        'Gemini is at its batch limit; next tick tries again',
      );
      return 'deferred';
    }
    const refused = permanentFailure(err);
    if (!refused) throw err;
    // A 4xx on create: nothing was created, and the same request would be refused again.
    await fallBack(held, job, `Gemini refused the batch: ${refused}`, deps, log);
    return 'fellBack';
  }
}

/**
 * The message of an error that will not go away by trying again: Gemini's 4xx other than 429, or
 * the staged set gone from the bucket (404). Undefined for anything that may pass (5xx, network).
 */
function permanentFailure(err: unknown): string | undefined {
  if (err instanceof GeminiCallError) {
    const s = err.httpStatus;
    return s !== undefined && s >= 400 && s < 500 && s !== 429 && s !== 408 ? err.message : undefined;
  }
  return (err as { code?: unknown }).code === 404 ? 'the staged set is gone from the bucket' : undefined;
}
