import type { ItemError, ItemOutcome, ItemRecord, JobRecord } from '../core/jobs.js';
import type { TaskDelivery } from '../core/tasks.js';
import type { Lease } from '../lifecycle/lifecycle.js';
import type { Logger } from '../platform/logger.js';
import type { FailedCall } from './call-failed.js';
import type { CheckedDelivery } from './check-answer.js';
import type { WorkerDeps, WorkerReply } from './handler.js';
import { keepLease } from './keep-lease.js';
import type { handOverFor } from './unclaimed.js';

/**
 * Items within this many of the end of the job check, when they finish, whether the job is done:
 * items are planned in input order, so the last to finish is almost always one of them and the job
 * ends the moment it does. Any other order is caught by the finish watcher. Each check reads every
 * counter shard, so few items do it: dozens of checks at once stall the last items behind them.
 */
export function checksCompletion(index: number, total: number): boolean {
  return index >= total - Math.max(8, Math.ceil(total * 0.005));
}

/** What a delivery holds once it has claimed its item. */
export interface Claimed {
  job: JobRecord;
  item: ItemRecord;
  lease: Lease;
}

/**
 * One delivery's hold on the item it claimed (a step of `runItem`, ./run-item.ts): the lease, renewed
 * as it works (a new version each time), and the ways the delivery ends — an outcome written once,
 * the item given back for a retry, or handed to a new task. Each step of the delivery takes it, as
 * do the steps of a failed call (./call-failed.ts) and of a checked answer (./check-answer.ts).
 */
export class ItemDelivery implements FailedCall, CheckedDelivery {
  readonly job: JobRecord;
  readonly item: ItemRecord;
  /** The plan its task carries (an older task's, when the item was planned again since). */
  readonly taskPlannedMs: number | undefined;
  /** The item's plan (the item's own, else its task's), which a task it is handed to keeps. */
  readonly plannedMs: number | undefined;
  /** Time spent waiting on Gemini, set once the call answers (the rest is the system's overhead). */
  geminiMs = 0;
  private held: Lease;

  constructor(
    readonly delivery: TaskDelivery,
    readonly deps: WorkerDeps,
    claimed: Claimed,
    readonly log: Logger,
    readonly lastAttempt: boolean,
    readonly handOver: ReturnType<typeof handOverFor>,
    /** When the delivery started (`deps.now`'s clock). */
    readonly startedMs: number,
  ) {
    this.job = claimed.job;
    this.item = claimed.item;
    this.held = claimed.lease;
    this.taskPlannedMs = (delivery.payload as { plannedMs?: number }).plannedMs;
    this.plannedMs = claimed.item.plannedMs ?? this.taskPlannedMs;
  }

  /** The lease as this delivery holds it now. */
  lease(): Lease {
    return this.held;
  }

  now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /**
   * Writes the outcome (once: nothing when the lease was lost), then `after` if it was written (the
   * response cache's steps), and replies.
   */
  finish(outcome: ItemOutcome, event: string, after?: () => Promise<void> | undefined): Promise<WorkerReply> {
    return this.record(
      async () => {
        const written = await this.deps.lifecycle.complete(this.held, outcome);
        if (written) await after?.();
        return written;
      },
      outcome.state,
      event,
    );
  }

  fail(error: ItemError, event: string): Promise<WorkerReply> {
    return this.finish({ state: 'failed', error }, event);
  }

  /**
   * Writes an outcome (`write`: false when the lease was lost), moves a pipeline's unit on, finishes
   * the job if the item was one of its last, and logs the item's times.
   */
  async record(write: () => Promise<boolean>, state: string, event: string): Promise<WorkerReply> {
    const { deps, job, item, log } = this;
    const written = await write();
    // A pipeline's unit: its item moves on to its next step (lifecycle/pipeline-advance.ts).
    if (written && job.unitOf) await deps.lifecycle.pipeline.unitEnded(job, item.index, deps.planner, log);
    if (written && checksCompletion(item.index, job.total)) await deps.lifecycle.finishIfDone(job.id, log);
    const totalMs = this.now() - this.startedMs;
    // overheadMs is what the system adds to Gemini's own time: the benchmark's per-item overhead.
    log.info(
      {
        event,
        written,
        state,
        totalMs,
        geminiMs: this.geminiMs,
        overheadMs: totalMs - this.geminiMs,
        // How far behind its plan this delivery started (a queue keeping up stays near 0).
        behindPlanMs: this.plannedMs === undefined ? undefined : this.startedMs - this.plannedMs,
      },
      `item ${state}`,
    );
    return { status: 200, body: { outcome: state } };
  }

  /** Gives the item back for the queue to deliver again (after `retryAfterSeconds`, when given). */
  async retryLater(
    status: number,
    retryAfterSeconds: number | undefined,
    outcome: string,
  ): Promise<WorkerReply> {
    await this.release();
    return { status, ...(retryAfterSeconds ? { retryAfterSeconds } : {}), body: { outcome } };
  }

  /** Gives the lease up; `plannedMs` records a new plan (the item has a new task). */
  release(plannedMs?: number): Promise<void> {
    return this.deps.lifecycle.release(this.held, plannedMs);
  }

  /** Renews the lease if less than `needMs` is left; false (and the lease is gone) when it was lost. */
  async leaseFor(needMs: number): Promise<boolean> {
    const kept = await keepLease(this.held, needMs, this.deps);
    if (kept) this.held = kept;
    else
      this.log.warn(
        { event: 'item.lease_lost' },
        'the lease was lost (another delivery, the reconciler or a cancel changed the item); stopping',
      );
    return kept !== undefined;
  }
}

/** The reply of a delivery whose lease was lost: another holder ends the item. */
export function leaseLost(): WorkerReply {
  return { status: 200, body: { outcome: 'lease-lost' } };
}
