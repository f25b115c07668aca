import type { BatchView, CallbackView, JobView } from '../api/jobs.js';
import { budgetNotice } from './budget.js';
import type { JobRecord } from './jobs.js';
import type { Totals } from './totals.js';

/** A job as clients see it (`GET /jobs/{id}`, the SSE `done` event, the callback body), from its record. */

/**
 * The client's view of a job from its record and its totals (and its batches, for batch jobs, and
 * its callback's delivery, once there is one).
 */
export function toJobView(
  job: JobRecord,
  totals: Totals,
  batches?: BatchView[],
  callback?: CallbackView,
): JobView {
  return {
    id: job.id,
    status: job.status,
    mode: job.mode,
    model: job.model,
    source: job.source,
    counts: totals.counts,
    usage: totals.usage,
    costUsd: totals.costUsd,
    ...(job.deadlineMs !== undefined ? { deadline: new Date(job.deadlineMs).toISOString() } : {}),
    ...(totals.tiers ? { tiers: totals.tiers } : {}),
    ...(totals.savedUsd !== undefined ? { savedUsd: totals.savedUsd } : {}),
    ...(totals.cache ? { cache: totals.cache } : {}),
    ...(totals.implicitCache ? { implicitCache: totals.implicitCache } : {}),
    createdAt: job.createdAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
    notice: job.notice,
    reconciled: job.reconciled,
    ...(job.paths ? { paths: job.paths } : {}),
    ...(batches ? { batches } : {}),
    ...(callback ? { callback } : {}),
    ...(job.retryOf ? { retryOf: job.retryOf } : {}),
    ...(job.retries?.length ? { retries: job.retries } : {}),
    ...(job.maxCostUsd !== undefined
      ? {
          budget: {
            maxCostUsd: job.maxCostUsd,
            spentUsd: totals.costUsd,
            stopped: job.budgetStopped === true,
          },
          ...(job.budgetStopped && !job.notice ? { notice: budgetNotice(job.maxCostUsd) } : {}),
        }
      : {}),
  };
}
