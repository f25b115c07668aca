/**
 * What every step of the Batch cycle shares: its dependencies, the run's lease and guarded writes,
 * the bound on a failing step, cancelling upstream, and sending a part's items back. The steps
 * themselves live in `cycle.ts` (poll, cancel), `submit.ts` and `collect.ts`, which import this and
 * never each other's callers (no import cycle).
 */
import type { BatchPart } from '../../core/batch.js';
import { isEnded, reroutePlanMs } from '../../core/batch-run.js';
import type { JobRecord } from '../../core/jobs.js';
import type { Quotas } from '../../core/quotas.js';
import type { BatchOutcomes } from '../../lifecycle/batch-outcomes.js';
import type { Lifecycle } from '../../lifecycle/lifecycle.js';
import type { BatchApi } from '../../platform/gemini/batch-api.js';
import { GeminiCallError } from '../../platform/gemini/client.js';
import type { Logger } from '../../platform/logger.js';
import type { ObjectStore } from '../../platform/object-store.js';
import type { BatchRun, BatchRunsStore, RunPatch } from '../../platform/store/batch-runs.js';

export interface BatchCycleDeps {
  lifecycle: Pick<Lifecycle, 'getJob' | 'markRunning' | 'finishIfDone'>;
  /** The cycle's own records; item outcomes and counters are the lifecycle's (`outcomes`). */
  runs: BatchRunsStore;
  outcomes: BatchOutcomes;
  api: BatchApi;
  objects: ObjectStore;
  quotas: Quotas;
  logger: Logger;
  /** A batch still PENDING this long after its creation goes back to the fallback path. */
  pendingDeadlineMs: number;
  /** Failed ticks in a row on one step after which its part falls back (default 30). */
  maxStepFailures?: number;
  /** Time since a step first failed (and kept failing) after which its part falls back (default 3 h). */
  maxStepMs?: number;
  /** How long one tick owns a run it works on (upload, create, collect); renewed while it works. */
  leaseMs?: number;
  /** Unused: the lifecycle's outcomes enqueue sent-back items. Accepted until the tick stops passing it. */
  tasks?: unknown;
  now?: () => number;
}

/** What a step did to a run, counted in the tick's report (undefined: nothing to count). */
export type StepOutcome = 'submitted' | 'collected' | 'fellBack' | 'cancelled' | 'deferred' | undefined;

const DEFAULT_LEASE_MS = 10 * 60_000;
export const DEFAULT_MAX_STEP_FAILURES = 30;
export const DEFAULT_MAX_STEP_MS = 3 * 3_600_000;

/** The part of a run the lifecycle's outcomes work on. */
export function partOf(run: BatchRun & BatchPart) {
  return {
    jobId: run.jobId,
    part: run.part,
    fromIndex: run.fromIndex,
    toIndex: run.toIndex,
    items: run.items,
  };
}

/** Takes the run for this tick: the run at its new version, or undefined when another tick has it. */
export async function lease(run: BatchRun, deps: BatchCycleDeps, now: number): Promise<BatchRun | undefined> {
  const leaseUntilMs = now + (deps.leaseMs ?? DEFAULT_LEASE_MS);
  const version = await deps.runs.update(run, { leaseUntilMs });
  return version ? { ...run, version, leaseUntilMs } : undefined;
}

/** Writes `patch` under the lease; throws when the lease was lost (another tick took the run). */
export async function advance(
  run: BatchRun,
  patch: RunPatch,
  deps: Pick<BatchCycleDeps, 'runs'>,
): Promise<BatchRun> {
  const version = await deps.runs.update(run, patch);
  if (!version) throw new Error(`batch run ${run.id} was taken over by another tick`);
  return { ...run, ...patch, version };
}

/**
 * Why the run's current step is given up on: it failed `maxStepFailures` ticks in a row, or has
 * kept failing for `maxStepMs` (a download 404, a batch gone or in an unknown state, an upload
 * answered without a file: none of them passes by trying again forever). Undefined while it may.
 */
export function stuckReason(run: BatchRun, now: number, deps: BatchCycleDeps): string | undefined {
  const failures = run.stepFailures ?? 0;
  if (failures === 0) return undefined;
  const since = run.stepSince ?? now;
  const tooMany = failures >= (deps.maxStepFailures ?? DEFAULT_MAX_STEP_FAILURES);
  const tooLong = now - since >= (deps.maxStepMs ?? DEFAULT_MAX_STEP_MS);
  if (!tooMany && !tooLong) return undefined;
  const minutes = Math.round((now - since) / 60_000);
  return `a batch step failed ${failures} times over ${minutes} min: ${run.lastError ?? 'no error recorded'}`;
}

/**
 * Cancels a batch upstream. A batch that is gone, or that has ended (upstream refuses to cancel
 * it), has nothing left to bill: done. Anything else throws, so the run stays open and a later
 * tick tries again (a cancel swallowed would leave a batch running, and paid for, unseen).
 */
export async function cancelUpstream(name: string, deps: Pick<BatchCycleDeps, 'api'>): Promise<void> {
  try {
    await deps.api.cancelBatch(name);
  } catch (err) {
    const status = err instanceof GeminiCallError ? err.httpStatus : undefined;
    if (status === 404) return;
    if (status !== undefined && status >= 400 && status < 500 && status !== 429 && status !== 408) {
      const info = await deps.api.getBatch(name).catch(() => undefined);
      if (info && isEnded(info.state)) return;
    }
    throw err;
  }
}

/**
 * Cancels the batches upstream named like the run's (its displayName) other than the one it
 * follows (`keep`): a create whose answer was lost may have made one, seen only later in the list.
 */
export async function cancelTwins(
  run: BatchRun,
  keep: string | null,
  deps: Pick<BatchCycleDeps, 'api'>,
  log: Logger,
): Promise<void> {
  for await (const b of deps.api.listBatches()) {
    if (b.displayName !== run.displayName || b.name === keep || isEnded(b.state)) continue;
    await cancelUpstream(b.name, deps);
    log.warn({ event: 'batch.twin_cancelled', twin: b.name }, 'cancelled a second batch of the same part');
  }
}

/**
 * The items of a run that got no answer go back (to the queues or failed, by the job's choice),
 * through the lifecycle; then the run is closed, and only then are its files deleted (a responses
 * file is kept until its part's outcomes are durable, so a tick that stops halfway redoes it all).
 */
export async function fallBack(
  run: BatchRun,
  job: JobRecord,
  reason: string,
  deps: BatchCycleDeps,
  log: Logger,
  extra: { patch?: RunPatch; files?: Array<string | undefined> } = {},
): Promise<void> {
  const to = job.onBatchFailure ?? 'realtime';
  const rpm = deps.quotas.models[job.model]?.rpm ?? 1;
  const { rerouted } = await deps.outcomes.sendBack(partOf(run), to, reason, reroutePlanMs(run.items, rpm));
  await advance(
    run,
    { state: 'fallen-back', fallback: reason, rerouted, leaseUntilMs: null, ...extra.patch },
    deps,
  );
  await removeFiles([run.fileName, ...(extra.files ?? [])], deps);
  log.warn({ event: 'batch.fell_back', reason, to }, `batch items sent back: ${reason}`);
  await deps.lifecycle.finishIfDone(job.id, log);
}

/** Uploaded input and generated output are deleted once a run ends (they would expire in 48 h). */
export async function removeFiles(
  names: Array<string | null | undefined>,
  deps: Pick<BatchCycleDeps, 'api'>,
): Promise<void> {
  for (const name of names) if (name) await deps.api.deleteFile(name).catch(() => undefined);
}
