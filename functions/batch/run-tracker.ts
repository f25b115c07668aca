import type { BatchRun } from '../platform/store/batch-runs.js';
import type { BatchCycleDeps } from './runs.js';

/**
 * Follows the run's version through a step, so that a step that throws gives its lease back (the
 * next tick tries again at once, not when the lease runs out) and leaves its error on the run for
 * the job view; a step that passes clears an earlier error. Another tick's lease is left alone.
 */
export function trackRun(run: BatchRun, deps: BatchCycleDeps) {
  const runs = deps.batch.runs;
  let latest = run;
  const update: typeof runs.update = async (r, patch) => {
    const version = await runs.update(r, patch);
    if (version && r.id === run.id) latest = { ...latest, ...patch, version };
    return version;
  };
  return {
    deps: { ...deps, batch: { ...deps.batch, runs: { ...runs, update } } },
    async settle(lastError: string | null): Promise<void> {
      const wrote = latest.version !== run.version;
      const heldByOther = !wrote && run.leaseUntilMs !== null && run.leaseUntilMs > (deps.now ?? Date.now)();
      if (heldByOther || (lastError === null && !latest.lastError)) return;
      await runs.update(latest, {
        lastError,
        ...(wrote && latest.leaseUntilMs !== null ? { leaseUntilMs: null } : {}),
      });
    },
  };
}
