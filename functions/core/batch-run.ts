/**
 * A Batch API run, pure: where a run stands in our records and upstream, and what a scheduler tick
 * does with a batch it finds in a given state. How a set is split into runs is in ./batch.ts; the
 * I/O lives in `functions/tick/batch-api/`.
 */
import { PLAN_AHEAD_MS } from './rate.js';

/** Where a batch run stands in our records (the upstream state is kept beside it). */
export type RunState =
  /** Waiting for upload and creation. */
  | 'staged'
  /** Its batch exists upstream; the tick polls it. */
  | 'running'
  /** Ended: results collected. */
  | 'collected'
  /** Ended: its unanswered items went back to the realtime path, or failed, by the job's choice. */
  | 'fallen-back'
  /** Ended: the job was cancelled; the upstream batch was cancelled too. */
  | 'cancelled';

/** The states of a run not yet ended: the ones a tick still looks after. */
export const OPEN_RUN_STATES: readonly RunState[] = ['staged', 'running'];

/** Upstream batch states, without the `BATCH_STATE_` / `JOB_STATE_` prefix. */
export type UpstreamState = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED' | 'EXPIRED';

/**
 * How long the enqueue task of a part's items sent back to the queues may take to plan them all:
 * the model's rate spreads `items` over `items / rpm` minutes, and a plan reaches
 * {@link PLAN_AHEAD_MS} ahead before the rest waits. Their due time allows for it, so the reconciler
 * takes over only when that task died, not while it is still working through the part.
 */
export function reroutePlanMs(items: number, rpm: number): number {
  return Math.ceil((items / Math.max(1, rpm)) * 60_000) + PLAN_AHEAD_MS;
}

/** Whether an upstream batch has ended (it takes no more work and bills no more). */
export function isEnded(upstream: UpstreamState): boolean {
  return (
    upstream === 'SUCCEEDED' || upstream === 'FAILED' || upstream === 'CANCELLED' || upstream === 'EXPIRED'
  );
}

/** What a tick does with a running batch it has just read. */
export type RunDecision =
  | { kind: 'wait' }
  | { kind: 'collect' }
  | { kind: 'fall-back'; reason: string; cancelUpstream: boolean };

/**
 * The tick's decision for a batch it polled: collect a finished one; send the items of one that
 * failed, expired, was cancelled by someone else, or stayed PENDING past `pendingDeadlineMs` since
 * it was created back to the fallback path (cancelling a pending one upstream first); else wait.
 * A batch we cancelled ourselves is cancelled again until it has ended, then collected (it may have
 * answered part of its lines meanwhile) or sent back with our reason.
 */
export function decideRun(
  upstream: UpstreamState,
  createdAtMs: number,
  nowMs: number,
  pendingDeadlineMs: number,
  error?: { message: string },
  /** Why we cancelled it ourselves (`BatchRun.cancelReason`): it ends with that reason, not another. */
  cancelReason?: string,
): RunDecision {
  if (cancelReason !== undefined) {
    if (upstream === 'SUCCEEDED') return { kind: 'collect' };
    return { kind: 'fall-back', reason: cancelReason, cancelUpstream: !isEnded(upstream) };
  }
  switch (upstream) {
    case 'SUCCEEDED':
      return { kind: 'collect' };
    case 'FAILED':
      return {
        kind: 'fall-back',
        reason: `the batch failed: ${error?.message ?? 'no reason given'}`,
        cancelUpstream: false,
      };
    case 'EXPIRED':
      return { kind: 'fall-back', reason: 'the batch expired before it ran', cancelUpstream: false };
    case 'CANCELLED':
      return {
        kind: 'fall-back',
        reason: 'the batch was cancelled outside gemini-fanout',
        cancelUpstream: false,
      };
    case 'PENDING':
      if (nowMs - createdAtMs > pendingDeadlineMs) {
        return {
          kind: 'fall-back',
          reason: `the batch was still pending after ${Math.round(pendingDeadlineMs / 1000)} s`,
          cancelUpstream: true,
        };
      }
      return { kind: 'wait' };
    default:
      return { kind: 'wait' };
  }
}
