import type { PipelineFields } from '../api/pipeline.js';
import { type PipelineSpec, parsePipeline } from '../core/pipeline.js';
import type { Quotas } from '../core/quotas.js';
import type { NormalizedJob } from '../core/requests.js';
import { ValidationError } from '../platform/errors.js';

/**
 * A `POST /jobs` body's `steps`, checked (its shape was checked with the body): the templates and
 * models (core/pipeline.ts), and what a pipeline cannot do yet. Undefined when the body has no steps.
 *
 * - Pipelines run realtime or through the Batch API (core/pipeline-route.ts); `flex` is a 400 (Flex
 *   is not offered per step).
 * - `maxCostUsd` is a 400: a budget is kept per job, and a pipeline's calls are spread over its steps'
 *   unit jobs.
 */
export function validatePipeline(
  body: unknown,
  normalized: NormalizedJob,
  quotas: Quotas,
): PipelineSpec | undefined {
  const { steps, onStepError } = body as PipelineFields;
  if (steps === undefined) {
    if (onStepError !== undefined)
      throw new ValidationError('Invalid job: onStepError needs steps.', [
        { field: 'onStepError', message: 'only with steps' },
      ]);
    return undefined;
  }
  if (normalized.mode === 'flex') {
    throw new ValidationError(
      `Invalid job: mode "${normalized.mode}" is not offered for jobs with steps yet (use "realtime", "batch" or "auto").`,
      [{ field: 'mode', message: `not "${normalized.mode}" with steps` }],
    );
  }
  if (normalized.maxCostUsd !== undefined) {
    throw new ValidationError('Invalid job: maxCostUsd is not offered for jobs with steps yet.', [
      { field: 'maxCostUsd', message: 'not with steps' },
    ]);
  }
  const parsed = parsePipeline(steps, onStepError, normalized.model, quotas);
  if ('problems' in parsed) {
    const first = parsed.problems[0]!;
    throw new ValidationError(`Invalid job: ${first.field} ${first.message}.`, parsed.problems.slice(0, 20));
  }
  return parsed.spec;
}
