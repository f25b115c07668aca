import type { ItemRecord, JobRecord } from '../core/jobs.js';
import type { Quotas } from '../core/quotas.js';
import type { Logger } from '../platform/logger.js';
import type { Stores } from '../platform/store/index.js';
import type { TaskQueue } from '../platform/task-queue.js';
import type { Lifecycle } from './lifecycle.js';
import type { Planner } from './plan.js';

/** What one run of the reconciler (./reconcile.ts) takes, keeps and reports, shared by its sweeps. */

/** The reconciler's dependencies (see ./reconcile.ts for what it does with them). */
export interface ReconcileDeps {
  /** `pauses`: items of a paused model wait for its queue, not for a new task. */
  stores: Pick<Stores, 'jobs' | 'items'> & Partial<Pick<Stores, 'pauses'>>;
  lifecycle: Lifecycle;
  planner: Planner;
  tasks: Pick<TaskQueue, 'enqueueControl'>;
  logger: Logger;
  /** How long enqueuing or a cancel may stand still before the reconciler acts. */
  stallMs: number;
  now?: () => number;
  /** Bounds of one run: items read per sweep, jobs read. */
  limits?: { items?: number; jobs?: number };
  /**
   * The sweep of pending items with no lease past their due time (default on). Off, only expired
   * leases are found: the simulation switches it off to show it finds the items that then hang.
   */
  orphanSweep?: boolean;
  /** The quotas (batch part limits): absent, a batch pipeline's later steps are not staged here. */
  quotas?: Quotas;
}

export interface ReconcileReport {
  retasked: number;
  failed: number;
  orphans: number;
  reenqueued: number;
  cancelsResumed: number;
  finished: number;
  /**
   * What the run could not do: items and jobs (logged as `reconcile.item_error`, `reconcile.job_error`)
   * and reads or writes it went on without (`reconcile.<what>_failed`). The next run tries again.
   */
  errors: number;
  /** Items given up on whose answer a delivery had paid for and parked: recorded, not failed. */
  recovered: number;
}

/** An item as the sweeps find it, across jobs. */
export type Item = ItemRecord & { jobId: string };

/** One run: its deps and clock, its report, the jobs it has read, the paused models. */
export interface Run {
  deps: ReconcileDeps;
  clock: () => number;
  report: ReconcileReport;
  jobOf: (id: string) => Promise<JobRecord | undefined>;
  /** Models whose queue is paused; undefined when unknown (the orphan sweep then waits a tick). */
  paused: Set<string> | undefined;
}

/**
 * Runs a read or write the run can do without; a failure is logged (`reconcile.<what>_failed`),
 * counted in `errors`, and the run goes on with `fallback`.
 */
export async function attempt<T>(run: Run, what: string, fn: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    run.report.errors++;
    run.deps.logger.error(
      { event: `reconcile.${what}_failed`, err: (err as Error).message },
      `could not ${what}`,
    );
    return fallback;
  }
}
