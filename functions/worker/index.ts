import type { Request, Response } from '@google-cloud/functions-framework';
import { taskPayloadSchema } from '../core/tasks.js';
import type { Deps } from '../deps.js';
import { toHttpError, ValidationError } from '../platform/errors.js';
import { traceFields } from '../platform/logger.js';
import { CONTROL_RUN_BUDGET_MS } from '../platform/task-queue.js';
import { handleTask, type TaskDelivery, type WorkerDeps } from './handler.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/** Parses a Cloud Tasks delivery from its `X-CloudTasks-*` headers and JSON body. */
export function parseDelivery(req: Pick<Request, 'header' | 'body'>): TaskDelivery {
  const parsed = taskPayloadSchema.safeParse(req.body);
  if (!parsed.success)
    throw new ValidationError(`not a gemini-fanout task: ${parsed.error.issues[0]?.message}`);
  return {
    queueName: req.header('x-cloudtasks-queuename') ?? '',
    taskName: req.header('x-cloudtasks-taskname') ?? '',
    retryCount: Number(req.header('x-cloudtasks-taskretrycount') ?? 0) || 0,
    executionCount: Number(req.header('x-cloudtasks-taskexecutioncount') ?? 0) || 0,
    payload: parsed.data,
  };
}

export function workerDeps(deps: Deps): WorkerDeps {
  let responseCache: ResponseCache | undefined;
  return {
    lifecycle: deps.lifecycle,
    planner: deps.planner,
    gemini: deps.gemini,
    tasks: deps.tasks,
    media: deps.media,
    quotas: deps.config.quotas,
    logger: deps.logger,
    geminiTimeoutMs: deps.config.gemini.timeoutMs,
    geminiFlexTimeoutMs: deps.config.gemini.flexTimeoutMs,
    leaseMs: deps.config.leaseMs,
    // Control tasks are dispatched with a deadline that covers this budget (task-queue.ts).
    enqueueBudgetMs: CONTROL_RUN_BUDGET_MS,
    // Made on first use, as the clients in deps.ts are: only item deliveries read it.
    get responseCache() {
      responseCache ??= createResponseCache({
        store: deps.stores.responseCache,
        objects: deps.objects,
        ledger: deps.stores.ledger,
        quotas: deps.config.quotas,
        ttlMs: deps.config.responseCacheTtlMs,
      });
      return responseCache;
    },
  };
}

/**
 * The Cloud Tasks target. 2xx ends the task (success, duplicate, or a failure recorded on the item);
 * 429/503 with `Retry-After` is back-pressure; 500 asks for another attempt. A bad payload is
 * acknowledged (200) after logging: retrying it could never succeed.
 */
export function createWorkerHandler(getDeps: () => Deps) {
  return async (req: Request, res: Response): Promise<void> => {
    const deps = getDeps();
    const log = deps.logger.child({
      ...traceFields(req.headers, deps.config.projectId),
      task: req.header('x-cloudtasks-taskname'),
    });
    try {
      await deps.taskAuth.verify(req.header('authorization'));
    } catch (err) {
      const mapped = toHttpError(err);
      log.warn({ event: 'worker.unauthenticated', reason: (err as Error).message }, 'refused a request');
      res.status(mapped.statusCode).json(mapped.body);
      return;
    }
    let delivery: TaskDelivery;
    try {
      delivery = parseDelivery(req);
    } catch (err) {
      log.error(
        { event: 'worker.bad_payload', reason: (err as Error).message },
        'dropping a task with a bad payload',
      );
      res.status(200).json({ outcome: 'bad-payload' });
      return;
    }
    try {
      const reply = await handleTask(delivery, { ...workerDeps(deps), logger: log });
      if (reply.retryAfterSeconds !== undefined)
        res.set('retry-after', String(Math.max(1, Math.ceil(reply.retryAfterSeconds))));
      res.status(reply.status).json(reply.body);
    } catch (err) {
      const mapped = toHttpError(err);
      log.error({ event: 'worker.error', err }, 'task failed; Cloud Tasks will retry');
      res.status(Math.max(mapped.statusCode, 500)).set(mapped.headers).json(mapped.body);
    }
  };
}
