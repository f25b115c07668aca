/** A job's totals (counts, usage, cost), summed from its counter shards or its items. */
import type { JobCounts, Usage } from '../api/jobs.js';

export function pendingOf(counts: Omit<JobCounts, 'pending'>): number {
  return Math.max(0, counts.total - counts.succeeded - counts.failed - counts.cancelled);
}

/** Counts, usage and cost of a job: from its counter shards while it runs, frozen once it ends. */
export interface Totals {
  counts: JobCounts;
  usage: Usage;
  costUsd: number;
}

/** Adds up per-shard (or per-item) contributions into totals. */
export function sumTotals(
  parts: Iterable<
    Partial<
      Record<'succeeded' | 'failed' | 'cancelled' | 'promptTokens' | 'outputTokens' | 'costUsd', number>
    >
  >,
  total: number,
): Totals {
  let succeeded = 0;
  let failed = 0;
  let cancelled = 0;
  let promptTokens = 0;
  let outputTokens = 0;
  let cost = 0;
  for (const d of parts) {
    succeeded += d.succeeded ?? 0;
    failed += d.failed ?? 0;
    cancelled += d.cancelled ?? 0;
    promptTokens += d.promptTokens ?? 0;
    outputTokens += d.outputTokens ?? 0;
    cost += d.costUsd ?? 0;
  }
  return {
    counts: {
      total,
      succeeded,
      failed,
      cancelled,
      pending: pendingOf({ total, succeeded, failed, cancelled }),
    },
    usage: { promptTokens, outputTokens },
    costUsd: Math.round(cost * 1e9) / 1e9,
  };
}
