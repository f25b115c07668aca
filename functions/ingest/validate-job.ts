import { routeJob } from '../core/batch.js';
import { parseDeadline } from '../core/deadline.js';
import type { JobMode } from '../core/jobs.js';
import { mediaLocationsFor } from '../core/owner-prefix.js';
import type { PipelineSpec } from '../core/pipeline.js';
import { routePipeline } from '../core/pipeline-route.js';
import type { Quotas } from '../core/quotas.js';
import { type NormalizedJob, normalizeJobRequest, RequestProblem } from '../core/requests.js';
import { callbackHostProblem } from '../platform/callback-address.js';
import { PayloadTooLargeError, ValidationError } from '../platform/errors.js';
import { validatePipeline } from './validate-pipeline.js';

/** A `POST /jobs` body, checked: its items, its path, and its deadline (epoch ms) when it names one. */
export interface ValidJob {
  normalized: NormalizedJob;
  mode: JobMode;
  deadlineMs?: number;
  /** `auto` with a close deadline, on a deployment that enables Priority. */
  priority?: true;
  /** A job with `steps`, checked and resolved. */
  pipeline?: PipelineSpec;
}

/**
 * Validates a `POST /jobs` body the same way for a job and for its dry run (as `owner`, whose media
 * folders it may use): the request
 * (422/413 naming each bad field), its `deadline` against `nowMs`, and the path it takes (`auto`
 * by the model's threshold, or by the deadline's time left).
 */
export function validateJob(
  body: unknown,
  deps: {
    quotas: Quotas;
    mediaGcsAllowed?: readonly string[];
    mediaGcsShared?: readonly string[];
    httpCallbacks?: boolean;
  },
  nowMs: number,
  owner?: string,
): ValidJob {
  let normalized: NormalizedJob;
  try {
    normalized = normalizeJobRequest(body, deps.quotas, {
      ...(deps.mediaGcsAllowed
        ? {
            // The owner's own media folders and the shared prefixes (core/owner-prefix.ts).
            mediaGcsAllowed: mediaLocationsFor(
              { roots: deps.mediaGcsAllowed, shared: deps.mediaGcsShared ?? [] },
              owner,
            ),
          }
        : {}),
      ...(deps.httpCallbacks ? { httpCallbacks: true } : {}),
      // A literal non-public address is refused now, naming the field, not at the first attempt.
      callbackHostProblem: (host) => callbackHostProblem(host, deps.httpCallbacks === true),
    });
  } catch (err) {
    if (err instanceof RequestProblem) {
      throw err.tooLarge
        ? new PayloadTooLargeError(err.message, err.problems)
        : new ValidationError(err.message, err.problems);
    }
    throw err;
  }
  const deadline = normalized.deadline ? parseDeadline(normalized.deadline, nowMs) : undefined;
  if (deadline && 'problem' in deadline) {
    throw new ValidationError(`Invalid job: deadline ${deadline.problem}.`, [
      { field: 'deadline', message: deadline.problem },
    ]);
  }
  const timeLeftMs = deadline ? deadline.deadlineMs - nowMs : undefined;
  // A pipeline takes one path for all its steps (core/pipeline-route.ts).
  const pipeline = validatePipeline(body, normalized, deps.quotas);
  const route = pipeline
    ? routePipeline(normalized.mode, normalized.items.length, pipeline, deps.quotas, timeLeftMs)
    : routeJob(normalized.mode, normalized.items.length, normalized.model, deps.quotas, timeLeftMs);
  if ('problem' in route) {
    throw new ValidationError(`Invalid job: ${route.problem}; use mode "realtime" or "auto".`, [
      { field: 'mode', message: route.problem },
    ]);
  }
  if (route.mode === 'batch' && normalized.maxCostUsd !== undefined) {
    // The budget is kept where items are sent one by one (the worker); a batch is sent whole.
    throw new ValidationError(
      'Invalid job: maxCostUsd applies to realtime and flex jobs, not to batch ones; use mode "realtime" or "flex".',
      [{ field: 'maxCostUsd', message: 'not with mode batch' }],
    );
  }
  return {
    normalized,
    mode: route.mode,
    ...(pipeline ? { pipeline } : {}),
    ...(route.priority ? { priority: true } : {}),
    ...(deadline ? { deadlineMs: deadline.deadlineMs } : {}),
  };
}
