import type { Request, Response } from '@google-cloud/functions-framework';
import type { Deps } from '../deps.js';
import { toHttpError } from '../platform/errors.js';
import { outsideDomain } from '../platform/runtime.js';
import { tick } from './handler.js';

/**
 * The Cloud Scheduler target: one tick per call, its report as the body; a duty that failed (or the
 * tick itself) answers 500, so Cloud Scheduler records the failure; the next tick tries again. Only
 * Cloud Scheduler may call it: its OIDC token for the scheduler account, audience tick's URL, is
 * verified as the worker verifies Cloud Tasks' (platform/task-auth.ts); anything else is 401.
 */
export function createTickHandler(getDeps: () => Deps) {
  return (req: Request, res: Response): Promise<void> =>
    outsideDomain(async () => {
      const deps = getDeps();
      try {
        await deps.schedulerAuth.verify(req.header('authorization'));
      } catch (err) {
        const mapped = toHttpError(err);
        if (mapped.statusCode >= 500)
          deps.logger.error({ event: 'tick.auth_failed', err }, 'tick auth failed');
        else
          deps.logger.warn(
            { event: 'tick.unauthenticated', reason: (err as Error).message },
            'refused a call',
          );
        res.status(mapped.statusCode).json(mapped.body);
        return;
      }
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
