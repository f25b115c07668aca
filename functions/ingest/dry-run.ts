import { estimateJob, type JobEstimate } from '../core/estimate.js';
import { ValidationError } from '../platform/errors.js';
import type { IngestDeps } from './handler.js';
import { validateJob } from './validate-job.js';

/**
 * `POST /jobs?dryRun=true`: the same validation as a job (the same 4xx for the same body), then
 * what it would take: items, tokens, cost per tier, the time the quota allows. Nothing is stored,
 * nothing is called (not even Gemini's countTokens: the estimate is the plan's own).
 */
export function dryRunJob(body: unknown, deps: IngestDeps, owner?: string, nowMs = Date.now()): JobEstimate {
  const { normalized, mode, deadlineMs, pipeline } = validateJob(body, deps, nowMs, owner);
  if (pipeline) {
    // Later steps' requests are made from earlier answers: there is nothing to count them by yet.
    throw new ValidationError('A dry run does not estimate jobs with steps yet; submit it without dryRun.', [
      { field: 'dryRun', message: 'not with steps' },
    ]);
  }
  return estimateJob(
    {
      model: normalized.model,
      mode,
      items: normalized.items,
      ...(deadlineMs !== undefined ? { deadlineMs } : {}),
    },
    deps.quotas,
  );
}
