import type { Request, Response } from '@google-cloud/functions-framework';
import type { Deps } from '../deps.js';
import { toHttpError } from '../platform/errors.js';
import type { BatchCycleDeps } from './batch-api/cycle.js';
import { tick } from './handler.js';
import { GEMINI_WEBHOOK_PATH, handleGeminiWebhook } from './webhook.js';

/**
 * The Cloud Scheduler target: one tick per call, its report as the body; a duty that failed (or the
 * tick itself) answers 500, so Cloud Scheduler records the failure; the next tick tries again. Only
 * Cloud Scheduler may call it: its OIDC token for the scheduler account, audience tick's URL, is
 * verified as the worker verifies Cloud Tasks' (platform/task-auth.ts); anything else is 401.
 *
 * One other route: `POST /gemini-webhook`, Gemini's batch webhooks (./webhook.ts). Gemini's
 * deliveries carry no OIDC token: that route is verified by its Standard Webhooks signature only
 * (GEMINI_WEBHOOK_SECRET), and moves the batch it names on at once.
 */
export function createTickHandler(getDeps: () => Deps) {
  return async (req: Request, res: Response): Promise<void> => {
    const deps = getDeps();
    if (req.method === 'POST' && req.path === GEMINI_WEBHOOK_PATH) return geminiWebhook(req, res, deps);
    try {
      await deps.schedulerAuth.verify(req.header('authorization'));
    } catch (err) {
      const mapped = toHttpError(err);
      if (mapped.statusCode >= 500) deps.logger.error({ event: 'tick.auth_failed', err }, 'tick auth failed');
      else
        deps.logger.warn({ event: 'tick.unauthenticated', reason: (err as Error).message }, 'refused a call');
      res.status(mapped.statusCode).json(mapped.body);
      return;
    }
    try {
      const report = await tick({
        pauses: deps.stores.pauses,
        stores: deps.stores,
        lifecycle: deps.lifecycle,
        planner: deps.planner,
        tasks: deps.tasks,
        logger: deps.logger,
        stallMs: deps.config.reconcileAfterMs,
        quotas: deps.config.quotas,
        batchApi: batchCycleDeps(deps),
        exports: { jobs: deps.stores.jobs, objects: deps.objects, bucket: deps.config.bucket },
        callbacks: { callbacks: deps.stores.callbacks },
      });
      res.status(report.failed.length > 0 ? 500 : 200).json(report);
    } catch (err) {
      deps.logger.error({ event: 'tick.failed', err }, 'scheduler tick failed');
      const mapped = toHttpError(err);
      res.status(mapped.statusCode).json(mapped.body);
    }
  };
}

/** The Batch cycle's dependencies (absent when there is no Batch API path). */
function batchCycleDeps(deps: Deps) {
  const batchOutcomes = deps.lifecycle.batchOutcomes;
  return (
    batchOutcomes && {
      runs: deps.batchApiStores.runs,
      outcomes: batchOutcomes,
      api: deps.batchApi,
      objects: deps.objects,
      quotas: deps.config.quotas,
      pendingDeadlineMs: deps.config.batchPendingDeadlineMs,
      maxStepFailures: deps.config.batchStepMaxFailures,
      maxStepMs: deps.config.batchStepMaxMs,
    }
  );
}

/** `POST /gemini-webhook`: the raw body (as the framework kept it) goes to the signature check. */
async function geminiWebhook(req: Request, res: Response, deps: Deps): Promise<void> {
  const cycle = batchCycleDeps(deps);
  const batchApi: BatchCycleDeps | undefined = cycle && {
    ...cycle,
    lifecycle: deps.lifecycle,
    logger: deps.logger,
  };
  try {
    const answer = await handleGeminiWebhook(
      { headers: req.headers, rawBody: req.rawBody },
      {
        ...(deps.config.geminiWebhookSecret ? { secret: deps.config.geminiWebhookSecret } : {}),
        ...(batchApi ? { batchApi } : {}),
        logger: deps.logger,
      },
    );
    res.status(answer.status).json(answer.body);
  } catch (err) {
    deps.logger.error({ event: 'webhook.failed', err }, 'Gemini webhook failed');
    const mapped = toHttpError(err);
    res.status(mapped.statusCode).json(mapped.body);
  }
}
