import type { JobMode } from './jobs.js';
import type { Quotas } from './quotas.js';

/**
 * Flex, pure: which tier an item of a `flex` job is sent at, and when a shed Flex call is tried
 * again. Gemini's Flex tier (half price) answers within a target of 1–15 minutes and is shed with
 * 503 when its capacity is full, never falling back to standard by itself: that fallback is ours.
 * An item goes on Flex while its job's deadline leaves Flex's latency (`serviceTiers.flex.latencyMs`),
 * and standard once it does not: a shed item is retried on Flex with backoff, and the retry that
 * would leave too little time is sent standard instead.
 */

type FlexSettings = Quotas['serviceTiers']['flex'];

/** The moment a job's items must be answered by: its own deadline, else Flex's default window. */
export function flexDeadlineMs(
  job: { createdAt: Date; deadlineMs?: number },
  flex: Pick<FlexSettings, 'defaultDeadlineMs'>,
): number {
  return job.deadlineMs ?? job.createdAt.getTime() + flex.defaultDeadlineMs;
}

/**
 * The tier an item of `job` is sent at now: `flex` while the deadline leaves Flex's latency,
 * `standard` once it does not; `priority` for a job routed there (Gemini serves it as standard
 * over Priority's cap, and says so); undefined for jobs that ask for no tier (standard by default).
 */
export function callTierFor(
  job: { mode: JobMode; createdAt: Date; deadlineMs?: number; priority?: boolean },
  nowMs: number,
  flex: FlexSettings,
): 'flex' | 'standard' | 'priority' | undefined {
  if (job.priority && job.mode === 'realtime') return 'priority';
  if (job.mode !== 'flex') return undefined;
  return nowMs + flex.latencyMs < flexDeadlineMs(job, flex) ? 'flex' : 'standard';
}

/**
 * When a Flex call that was shed (503) is tried again: after a backoff doubling from `minBackoffMs`
 * with each attempt, at most `maxBackoffMs`, and never later than the moment the item must go
 * standard (its deadline less Flex's latency), when {@link callTierFor} sends it standard.
 */
export function flexRetryAtMs(
  job: { createdAt: Date; deadlineMs?: number },
  nowMs: number,
  attempts: number,
  flex: FlexSettings,
): number {
  const backoff = Math.min(
    flex.maxBackoffMs,
    flex.minBackoffMs * 2 ** Math.max(0, Math.min(attempts - 1, 20)),
  );
  const lastFlexMs = flexDeadlineMs(job, flex) - flex.latencyMs;
  return Math.max(nowMs, Math.min(nowMs + backoff, lastFlexMs));
}
