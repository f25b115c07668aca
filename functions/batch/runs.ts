import { batchFallbackError, decideRun, type RunState } from '../core/batch.js';
import { isTerminalJob, type JobRecord } from '../core/jobs.js';
import type { Quotas } from '../core/quotas.js';
import { partCounterId } from '../lifecycle/create.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { BatchApi } from '../platform/gemini-batch.js';
import type { Logger } from '../platform/logger.js';
import type { ObjectStore } from '../platform/object-store.js';
import type { BatchRun, RunPatch } from '../platform/store/batch-runs.js';
import type { BatchStores, CountersStore } from '../platform/store/index.js';
import type { TaskQueue } from '../platform/task-queue.js';
import { collectRun } from './collect.js';
import { trackRun } from './run-tracker.js';
import { submitRun } from './submit.js';

export interface BatchCycleDeps {
  lifecycle: Lifecycle;
  batch: BatchStores;
  counters: Pick<CountersStore, 'put'>;
  api: BatchApi;
  objects: ObjectStore;
  tasks: Pick<TaskQueue, 'enqueueControl'>;
  quotas: Quotas;
  logger: Logger;
  /** A batch still PENDING this long after its creation goes back to the fallback path. */
  pendingDeadlineMs: number;
  /** How long one tick owns a run it works on (upload, create, collect); renewed while it works. */
  leaseMs?: number;
  now?: () => number;
}

export interface BatchCycleReport {
  submitted: number;
  collected: number;
  fellBack: number;
  cancelled: number;
  deferred: number;
}

/** Runs looked at per tick. */
const RUNS_PER_TICK = 50;
const DEFAULT_LEASE_MS = 10 * 60_000;

/**
 * The Batch API half of a scheduler tick: every open run takes its next step. Safe when two ticks
 * run at once: a run is worked on only under a lease taken with a precondition on its version.
 * - staged: stream its share of the staged set into a Files API upload, record that creation is
 *   starting, then create the batch (a tick that crashed between those looks the batch up by its
 *   displayName before creating another); a 429 waits for the next tick;
 * - running: poll it; collect it when it succeeded; send its items back (realtime, or failed, by
 *   the job's choice) when it failed, expired, was cancelled elsewhere, or stayed pending too long;
 * - its job cancelled: cancel it upstream.
 */
export async function batchCycle(deps: BatchCycleDeps): Promise<BatchCycleReport> {
  const report: BatchCycleReport = { submitted: 0, collected: 0, fellBack: 0, cancelled: 0, deferred: 0 };
  for (const run of await deps.batch.runs.listOpen(RUNS_PER_TICK)) {
    const log = deps.logger.child({ jobId: run.jobId, part: run.part, batch: run.batchName });
    const tracked = trackRun(run, deps);
    try {
      const done = await step(run, tracked.deps, log);
      if (done) report[done]++;
      if (run.lastError) await tracked.settle(null);
    } catch (err) {
      const message = (err as Error).message;
      log.error({ event: 'batch.step_failed', err: message }, 'batch step failed; next tick tries again');
      await tracked.settle(message).catch(() => undefined);
    }
  }
  return report;
}

/** What a step did to a run, counted in the tick's report (undefined: nothing to count). */
export type StepOutcome = keyof BatchCycleReport | undefined;

async function step(run: BatchRun, deps: BatchCycleDeps, log: Logger): Promise<StepOutcome> {
  const now = (deps.now ?? Date.now)();
  const job = await deps.lifecycle.getJob(run.jobId);
  if (!job || job.status === 'cancelled' || (isTerminalJob(job.status) && !job.cancelPending)) {
    return (await cancelRun(run, deps, log)) ? 'cancelled' : undefined;
  }
  if (run.leaseUntilMs !== null && run.leaseUntilMs > now) return undefined;
  if (run.state === 'staged') return submitRun(run, job, deps, log);
  if (!run.batchName) return undefined;
  const info = await deps.api.getBatch(run.batchName);
  const decision = decideRun(info.state, run.createdAtMs ?? now, now, deps.pendingDeadlineMs, info.error);
  if (decision.kind === 'wait') {
    if (info.state !== run.upstream || JSON.stringify(info.stats) !== JSON.stringify(run.stats))
      await deps.batch.runs.update(run, { upstream: info.state, stats: info.stats });
    return undefined;
  }
  const held = await lease(run, deps, now);
  if (!held) return undefined;
  if (decision.kind === 'collect') {
    await collectRun(held, job, info, deps, log);
    return 'collected';
  }
  if (decision.cancelUpstream) await deps.api.cancelBatch(run.batchName).catch(() => undefined);
  if (info.responsesFile) {
    // A batch that ended early may have answered part of its lines (billed upstream): keep those,
    // send only the rest back.
    await collectRun(held, job, info, deps, log, decision.reason);
    return 'fellBack';
  }
  await fallBack(held, job, decision.reason, deps, log, { upstream: info.state, stats: info.stats });
  return 'fellBack';
}

/** Takes the run for this tick: the run at its new version, or undefined when another tick has it. */
export async function lease(run: BatchRun, deps: BatchCycleDeps, now: number): Promise<BatchRun | undefined> {
  const version = await deps.batch.runs.update(run, {
    leaseUntilMs: now + (deps.leaseMs ?? DEFAULT_LEASE_MS),
  });
  return version ? { ...run, version, leaseUntilMs: now + (deps.leaseMs ?? DEFAULT_LEASE_MS) } : undefined;
}

/** Writes `patch` under the lease; throws when the lease was lost (another tick took the run). */
export async function advance(
  run: BatchRun,
  patch: RunPatch,
  deps: Pick<BatchCycleDeps, 'batch'>,
): Promise<BatchRun> {
  const version = await deps.batch.runs.update(run, patch);
  if (!version) throw new Error(`batch run ${run.id} was taken over by another tick`);
  return { ...run, ...patch, version };
}

/**
 * The items of a run that got no answer go back: to the queues (the job's `onBatchFailure` is
 * `realtime`, the default) or failed with the reason. Idempotent: a tick that stops halfway is
 * redone by the next (the sweep finds what is left; the enqueue task is named).
 */
export async function fallBack(
  run: BatchRun,
  job: JobRecord,
  reason: string,
  deps: BatchCycleDeps,
  log: Logger,
  final: RunPatch & { state?: RunState } = {},
): Promise<void> {
  const { items } = deps.batch;
  if (job.onBatchFailure === 'fail') {
    await items.sweepPart(job.id, run.part, {
      kind: 'fail',
      outcome: { state: 'failed', error: batchFallbackError(reason) },
    });
  } else {
    await items.sweepPart(job.id, run.part, { kind: 'reroute' });
    await deps.tasks.enqueueControl(
      { kind: 'enqueue', jobId: job.id, from: run.fromIndex, to: run.toIndex },
      `${job.id}-enqueue-fallback-p${run.part}`,
    );
  }
  const counts = await items.countPart(job.id, run.part);
  await deps.counters.put(job.id, partCounterId(run.part), counts);
  const settled = (counts.succeeded ?? 0) + (counts.failed ?? 0) + (counts.cancelled ?? 0);
  await advance(
    run,
    {
      state: 'fallen-back',
      fallback: reason,
      rerouted: Math.max(0, run.items - settled),
      leaseUntilMs: null,
      ...final,
    },
    deps,
  );
  await removeFiles([run.fileName], deps);
  log.warn(
    { event: 'batch.fell_back', reason, to: job.onBatchFailure ?? 'realtime' },
    `batch items sent back: ${reason}`,
  );
  await deps.lifecycle.finishIfDone(job.id, log);
}

/** The job is gone or cancelled: cancel the batch upstream and close the run. */
async function cancelRun(run: BatchRun, deps: BatchCycleDeps, log: Logger): Promise<boolean> {
  if (run.batchName) await deps.api.cancelBatch(run.batchName).catch(() => undefined);
  const version = await deps.batch.runs.update(run, { state: 'cancelled', leaseUntilMs: null });
  if (!version) return false;
  await removeFiles([run.fileName], deps);
  log.info({ event: 'batch.cancelled' }, 'job cancelled: its batch is cancelled');
  return true;
}

/** Uploaded input and generated output are deleted once a run ends (they would expire in 48 h). */
export async function removeFiles(
  names: Array<string | null | undefined>,
  deps: Pick<BatchCycleDeps, 'api'>,
): Promise<void> {
  for (const name of names) if (name) await deps.api.deleteFile(name).catch(() => undefined);
}
