import type { Request, Response } from '@google-cloud/functions-framework';
import type { Deps } from '../deps.js';
import { toHttpError } from '../platform/errors.js';
import { outsideDomain } from '../platform/runtime.js';
import { tick } from './handler.js';

/**
 * The Cloud Scheduler target: one tick per call, its report as the body; a duty that failed (or the
 * tick itself) answers 500, so Cloud Scheduler records the failure; the next tick tries again.
 */
export function createTickHandler(getDeps: () => Deps) {
  return (_req: Request, res: Response): Promise<void> =>
    outsideDomain(async () => {
      const deps = getDeps();
      const batchOutcomes = deps.lifecycle.batchOutcomes;
      try {
        const report = await tick({
          pauses: deps.stores.pauses,
          stores: deps.stores,
          lifecycle: deps.lifecycle,
          planner: deps.planner,
          tasks: deps.tasks,
          logger: deps.logger,
          stallMs: deps.config.reconcileAfterMs,
          batchApi: batchOutcomes && {
            runs: deps.batchApiStores.runs,
            outcomes: batchOutcomes,
            api: deps.batchApi,
            objects: deps.objects,
            quotas: deps.config.quotas,
            pendingDeadlineMs: deps.config.batchPendingDeadlineMs,
            maxStepFailures: deps.config.batchStepMaxFailures,
            maxStepMs: deps.config.batchStepMaxMs,
          },
          exports: { jobs: deps.stores.jobs, objects: deps.objects, bucket: deps.config.bucket },
          callbacks: { callbacks: deps.stores.callbacks },
        });
        res.status(report.failed.length > 0 ? 500 : 200).json(report);
      } catch (err) {
        deps.logger.error({ event: 'tick.failed', err }, 'scheduler tick failed');
        const mapped = toHttpError(err);
        res.status(mapped.statusCode).json(mapped.body);
      }
    });
}
