import type { BatchRun } from '../../platform/store/batch-runs.js';
import type { BatchCycleDeps } from './run-steps.js';

/**
 * Follows the run's version through a step, so that a step that throws gives its lease back (the
 * next tick tries again at once, not when the lease runs out), leaves its error on the run for the
 * job view and counts it (`stepFailures` in a row since `stepSince`: what bounds a step); a step
 * that passes clears the error and the count. Another tick's lease is left alone.
 */
export function trackRun(run: BatchRun, deps: BatchCycleDeps) {
  const runs = deps.runs;
  const clock = deps.now ?? Date.now;
  let latest = run;
  const update: typeof runs.update = async (r, patch) => {
    const version = await runs.update(r, patch);
    if (version && r.id === run.id) latest = { ...latest, ...patch, version };
    return version;
  };
  return {
    // Each method forwarded, not `{ ...runs }`: a store that is a class instance keeps its methods
    // on its prototype, which a spread leaves behind.
    deps: {
      ...deps,
      runs: {
        createMany: (list: Parameters<typeof runs.createMany>[0]) => runs.createMany(list),
        listOpen: (limit: number) => runs.listOpen(limit),
        listForJob: (jobId: string) => runs.listForJob(jobId),
        findByBatchName: (name: string) => runs.findByBatchName(name),
        update,
      },
    },
    async settle(lastError: string | null): Promise<void> {
      const wrote = latest.version !== run.version;
      const now = clock();
      const heldByOther = !wrote && run.leaseUntilMs !== null && run.leaseUntilMs > now;
      const clean = !latest.lastError && !latest.stepFailures;
      if (heldByOther || (lastError === null && clean)) return;
      await runs.update(latest, {
        lastError,
        stepFailures: lastError === null ? 0 : (latest.stepFailures ?? 0) + 1,
        stepSince: lastError === null ? null : (latest.stepSince ?? now),
        ...(wrote && latest.leaseUntilMs !== null ? { leaseUntilMs: null } : {}),
      });
    },
  };
}
