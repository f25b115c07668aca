import { decideRun, isEnded } from '../../core/batch-run.js';
import { isTerminalJob, type JobRecord } from '../../core/jobs.js';
import type { BatchInfo } from '../../platform/gemini/batch-api.js';
import type { Logger } from '../../platform/logger.js';
import type { BatchRun } from '../../platform/store/batch-runs.js';
import { collectRun } from './collect.js';
import {
  advance,
  type BatchCycleDeps,
  cancelTwins,
  cancelUpstream,
  fallBack,
  lease,
  removeFiles,
  type StepOutcome,
  stuckReason,
} from './run-steps.js';
import { trackRun } from './run-tracker.js';
import { submitRun } from './submit.js';

export type { BatchCycleDeps, StepOutcome } from './run-steps.js';

export interface BatchCycleReport {
  submitted: number;
  collected: number;
  fellBack: number;
  cancelled: number;
  deferred: number;
}

/** Runs looked at per tick. */
const RUNS_PER_TICK = 50;

/**
 * The Batch API half of a scheduler tick: every open run takes its next step. Safe when two ticks
 * run at once: a run is worked on only under a lease taken with a precondition on its version.
 * - staged: stream its share of the staged set into a Files API upload, record that creation is
 *   starting, then create the batch (a tick that crashed between those looks the batch up by its
 *   displayName before creating another, and cancels a twin that shows up later); a 429 waits;
 * - running: poll it; collect it when it succeeded; send its items back (realtime, or failed, by
 *   the job's choice) when it failed, expired, was cancelled elsewhere, or stayed pending too long
 *   (cancelled upstream first, then read again: what it answered meanwhile is collected);
 * - its job cancelled: cancel it upstream; the run stays open until the cancel went through;
 * - a step that keeps failing (see `stuckReason`) is given up on: its items go back with the reason.
 */
export async function batchCycle(deps: BatchCycleDeps): Promise<BatchCycleReport> {
  const report: BatchCycleReport = { submitted: 0, collected: 0, fellBack: 0, cancelled: 0, deferred: 0 };
  for (const run of await deps.runs.listOpen(RUNS_PER_TICK)) {
    const { outcome } = await stepRun(run, deps);
    if (outcome) report[outcome]++;
  }
  return report;
}

/**
 * One run's next step, under the rules of `batchCycle` (the lease, the step's bound, the error left
 * on the run): what a tick does for each open run, and what a batch webhook does for the run it
 * names (../webhook.ts), so the two never do a step twice. Never throws: a step that failed is
 * logged, recorded on the run and returned as `error`; the next tick tries again.
 */
export async function stepRun(
  run: BatchRun,
  deps: BatchCycleDeps,
): Promise<{ outcome: StepOutcome; error?: string }> {
  const log = deps.logger.child({ jobId: run.jobId, part: run.part, batch: run.batchName });
  const tracked = trackRun(run, deps);
  try {
    const outcome = await step(run, tracked.deps, log);
    if (run.lastError || run.stepFailures) await tracked.settle(null);
    return { outcome };
  } catch (err) {
    const message = (err as Error).message;
    log.error({ event: 'batch.step_failed', err: message }, 'batch step failed; next tick tries again');
    await tracked.settle(message).catch(() => undefined);
    return { outcome: undefined, error: message };
  }
}

async function step(run: BatchRun, deps: BatchCycleDeps, log: Logger): Promise<StepOutcome> {
  const now = (deps.now ?? Date.now)();
  const job = await deps.lifecycle.getJob(run.jobId);
  if (!job || job.status === 'cancelled' || (isTerminalJob(job.status) && !job.cancelPending)) {
    return cancelRun(run, deps, log, now);
  }
  if (run.leaseUntilMs !== null && run.leaseUntilMs > now) return undefined;
  const stuck = stuckReason(run, now, deps);
  if (stuck) return giveUp(run, job, stuck, deps, log, now);
  if (run.state === 'staged') return submitRun(run, job, deps, log);
  return pollRun(run, job, deps, log, now);
}

/**
 * A running run's step: read its batch, wait, collect it, or send its items back (a batch still
 * pending past the deadline is cancelled first, then read again).
 */
async function pollRun(
  run: BatchRun,
  job: JobRecord,
  deps: BatchCycleDeps,
  log: Logger,
  now: number,
): Promise<StepOutcome> {
  if (!run.batchName) return undefined;
  // A twin that cannot be cancelled now is looked for again next tick; the run's own batch goes on.
  if (run.ambiguousCreate)
    await cancelTwins(run, run.batchName, deps, log).catch((err: Error) =>
      log.warn({ event: 'batch.twin_check_failed', err: err.message }, 'could not look for a twin batch'),
    );
  const info = await deps.api.getBatch(run.batchName);
  const decision = decideRun(
    info.state,
    run.createdAtMs ?? now,
    now,
    deps.pendingDeadlineMs,
    info.error,
    run.cancelReason ?? undefined,
  );
  if (decision.kind === 'wait') {
    if (info.state !== run.upstream || JSON.stringify(info.stats) !== JSON.stringify(run.stats))
      await deps.runs.update(run, { upstream: info.state, stats: info.stats });
    return undefined;
  }
  let held = await lease(run, deps, now);
  if (!held) return undefined;
  if (decision.kind === 'collect') {
    await collectRun(held, job, info, deps, log, held.cancelReason ?? undefined);
    return 'collected';
  }
  let ended = info;
  if (decision.cancelUpstream) ({ held, ended } = await cancelOurselves(held, decision.reason, deps, log));
  if (ended.responsesFile) {
    // A batch that ended early may have answered part of its lines (billed upstream): keep those,
    // send only the rest back.
    await collectRun(held, job, ended, deps, log, decision.reason);
    return 'fellBack';
  }
  await fallBack(held, job, decision.reason, deps, log, {
    patch: { upstream: ended.state, stats: ended.stats },
  });
  return 'fellBack';
}

/**
 * Cancels the run's batch for `reason` (recorded first, so a later tick ends the run with it), then
 * reads it again: a batch that started between our read and the cancel may have answered lines,
 * which are then collected. One that has not ended yet fails the step; later ticks cancel and
 * read it again, within the step's bound.
 */
async function cancelOurselves(
  run: BatchRun,
  reason: string,
  deps: BatchCycleDeps,
  log: Logger,
): Promise<{ held: BatchRun; ended: BatchInfo }> {
  const held = run.cancelReason === reason ? run : await advance(run, { cancelReason: reason }, deps);
  await cancelUpstream(held.batchName!, deps);
  const ended = await deps.api.getBatch(held.batchName!);
  if (!isEnded(ended.state))
    throw new Error(`the batch was cancelled (${reason}) but is still ${ended.state}`);
  log.warn({ event: 'batch.cancelled_upstream', reason, state: ended.state }, 'batch cancelled upstream');
  return { held, ended };
}

/**
 * The run's step kept failing: its items go back with the reason; its batch is cancelled first, and
 * so is any batch a create in flight may have made (best effort: the items go back either way).
 */
async function giveUp(
  run: BatchRun,
  job: JobRecord,
  reason: string,
  deps: BatchCycleDeps,
  log: Logger,
  now: number,
): Promise<StepOutcome> {
  const held = await lease(run, deps, now);
  if (!held) return undefined;
  const warn = (err: Error) =>
    log.warn({ event: 'batch.cancel_failed', err: err.message }, 'could not cancel a batch given up on');
  if (held.ambiguousCreate || (held.createStartedMs !== null && !held.batchName))
    await cancelTwins(held, held.batchName, deps, log).catch(warn);
  if (held.batchName) await cancelUpstream(held.batchName, deps).catch(warn);
  await fallBack(held, job, reason, deps, log);
  return 'fellBack';
}

/**
 * The job is gone or cancelled: cancel its batch upstream (and any twin an ambiguous create made),
 * then close the run. A cancel that fails throws: the run stays open and the next tick tries
 * again, until the step's bound, when the run is closed with the error logged.
 */
async function cancelRun(
  run: BatchRun,
  deps: BatchCycleDeps,
  log: Logger,
  now: number,
): Promise<StepOutcome> {
  const stuck = stuckReason(run, now, deps);
  if (!stuck) {
    const unseen = run.ambiguousCreate || (run.createStartedMs !== null && !run.batchName);
    if (unseen) await cancelTwins(run, null, deps, log);
    if (run.batchName) await cancelUpstream(run.batchName, deps);
  } else {
    log.error(
      { event: 'batch.cancel_abandoned', reason: stuck },
      'could not cancel the batch upstream; gave up',
    );
  }
  const version = await deps.runs.update(run, { state: 'cancelled', leaseUntilMs: null });
  if (!version) return undefined;
  await removeFiles([run.fileName], deps);
  log.info({ event: 'batch.cancelled' }, 'job cancelled: its batch is cancelled');
  return 'cancelled';
}
