import type { Request, Response } from '@google-cloud/functions-framework';
import express from 'express';
import type { Deps } from '../deps.js';
import type { Caller } from '../platform/caller.js';
import {
  ForbiddenError,
  MethodNotAllowedError,
  NotFoundError,
  toHttpError,
  ValidationError,
} from '../platform/errors.js';
import { traceFields } from '../platform/logger.js';
import { sendCallbackKey } from './callback-key.js';
import { dryRunJob } from './dry-run.js';
import { streamEvents } from './events.js';
import { checkWrite } from './front-door.js';
import { cancelJob, createJob, getJob, type IngestDeps, listJobs, ownedJob } from './handler.js';
import { jobPageHtml, jobsPageHtml, pageHeaders } from './page.js';
import { createPageTokens } from './page-tokens.js';
import { getResultsPage, streamResults } from './results.js';
import { retryJob } from './retry-job.js';
import { pipeStream } from './stream.js';
import { createStreamSlots, inSlot, type StreamSlots } from './stream-slots.js';

export function ingestDeps(deps: Deps): IngestDeps {
  return {
    lifecycle: deps.lifecycle,
    objects: deps.objects,
    quotas: deps.config.quotas,
    logger: deps.logger,
    mediaGcsAllowed: deps.config.mediaGcsAllowed,
    mediaGcsShared: deps.config.mediaGcsShared,
    httpCallbacks: deps.config.local,
    pageTokens: createPageTokens(deps.config.pageTokenKey),
  };
}

/** A job id as the API makes them (a UUID, or a bucket file's derived id): anything else is no route. */
const JOB_ID = /^[A-Za-z0-9-]{1,64}$/;

/** The request's `Idempotency-Key`, checked: 1 to 255 visible ASCII characters. */
function idempotencyKey(req: Request): string | undefined {
  const key = req.header('idempotency-key');
  if (key !== undefined && !/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new ValidationError('Idempotency-Key must be 1 to 255 visible ASCII characters.', [
      { field: 'Idempotency-Key', message: 'invalid' },
    ]);
  }
  return key;
}

/** A browser asking for the page rather than a client asking for JSON. */
const wantsHtml = (req: Request) => req.method === 'GET' && req.accepts(['json', 'html']) === 'html';

/** The route's job id (checked against JOB_ID by the router's param). */
const jobIdOf = (req: Request) => req.params.id as string;

/** The request's path without trailing slashes (`/jobs/` is `/jobs`). */
const pathOf = (req: Request) => req.path.replace(/\/+$/, '') || '/';

/** What a route's handler is given besides the request: who calls, and the handler's dependencies. */
interface RouteContext {
  caller: Caller;
  deps: IngestDeps;
  callbackSecret: string | undefined;
  slots: StreamSlots;
  /** Called once the route's handler has answered (or thrown: `failed`). */
  done: () => void;
  failed: (err: unknown) => void;
}

type RouteHandler = (req: Request, res: Response, ctx: RouteContext) => Promise<void> | void;
type Middleware = (req: Request, res: Response, next: (err?: unknown) => void) => void;

const contextOf = (res: Response) => res.locals.route as RouteContext;

/** A route's handler as the router calls it: its answer or its error reaches the adapter. */
function handle(fn: RouteHandler): Middleware {
  return (req, res) => {
    const ctx = contextOf(res);
    Promise.resolve()
      .then(() => fn(req, res, ctx))
      .then(ctx.done, ctx.failed);
  };
}

/** The 405 of a route's other methods (HEAD included: an event stream has no end to wait for). */
function refuse(message: (req: Request) => string): Middleware {
  return handle((req) => {
    throw new MethodNotAllowedError(message(req));
  });
}

/** Create, or a re-run of a job: 202 with the job (200 when an idempotency key replayed it). */
function sendCreated(
  res: Response,
  answer: { replayed: boolean; created: { links: { self: string } } },
): void {
  res
    .status(answer.replayed ? 200 : 202)
    .location(answer.created.links.self)
    .json(answer.created);
}

/** `GET /jobs`: the caller's jobs, or the jobs page for a browser. */
const listJobsRoute: RouteHandler = async (req, res, { caller, deps }) => {
  if (wantsHtml(req)) res.status(200).set(pageHeaders()).send(jobsPageHtml());
  else res.status(200).json(await listJobs(caller, req.query as Record<string, string>, deps));
};

/** `POST /jobs`: a new job (or its estimate, with `dryRun=true`). */
const createJobRoute: RouteHandler = async (req, res, { caller, deps }) => {
  // JSON only, from this origin (front-door.ts): anything else would reach validation as a Buffer
  // or a string (and a few MB of bytes would come back as as many "unknown key" problems).
  checkWrite(req);
  // The body is within LIMITS.maxBodyBytes, on the wire and inflated: the framework's parser
  // refused anything larger before buffering it (platform/body-limit.ts).
  if (req.query.dryRun === 'true') {
    res.status(200).json(dryRunJob(req.body, deps, caller.id));
    return;
  }
  const key = idempotencyKey(req);
  const idempotency = key ? { idempotency: { key, caller: caller.id } } : {};
  sendCreated(res, await createJob(req.body, deps, { owner: caller.id, ...idempotency }));
};

/** `GET /jobs/{id}`: the job, or its live page for a browser. */
const getJobRoute: RouteHandler = async (req, res, { caller, deps }) => {
  const id = jobIdOf(req);
  if (!wantsHtml(req)) {
    res.status(200).json(await getJob(id, caller, deps));
    return;
  }
  await ownedJob(id, caller, deps);
  res.status(200).set(pageHeaders()).send(jobPageHtml(id));
};

/** `GET /jobs/{id}/results`: a page in input order, or every line as JSONL (`format=jsonl`). */
const resultsRoute: RouteHandler = async (req, res, { caller, deps, slots }) => {
  const id = jobIdOf(req);
  const query = req.query as Record<string, string | undefined>;
  if (query.format !== 'jsonl') {
    res.status(200).json(await getResultsPage(id, query, caller, deps));
    return;
  }
  await inSlot(slots, caller.id, () =>
    pipeStream(res, streamResults(id, caller, deps), 'application/x-ndjson'),
  );
};

/** `GET /jobs/{id}/events`: results as they finish (SSE), until the client goes. */
const eventsRoute: RouteHandler = async (req, res, { caller, deps, slots }) => {
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  const events = streamEvents(jobIdOf(req), req.header('last-event-id'), caller, deps, abort.signal);
  await inSlot(slots, caller.id, () => pipeStream(res, events, 'text/event-stream'));
};

/** `POST /jobs/{id}/cancel`. */
const cancelRoute: RouteHandler = async (req, res, { caller, deps }) => {
  checkWrite(req);
  res.status(200).json(await cancelJob(jobIdOf(req), caller, deps));
};

/** `POST /jobs/{id}/retry`: a new job of the items that did not succeed. */
const retryRoute: RouteHandler = async (req, res, { caller, deps }) => {
  checkWrite(req);
  const key = idempotencyKey(req);
  const idempotency = key ? { key, caller: caller.id } : undefined;
  sendCreated(res, await retryJob(jobIdOf(req), req.body, caller, deps, idempotency));
};

/**
 * The jobs API's routes (Express's router): each path answers its own methods, and any other
 * method 405 saying which it takes. A job id outside {@link JOB_ID} is no route (404).
 */
function jobsRouter() {
  const router = express.Router();
  router.param('id', (req: Request, _res: Response, next: (err?: unknown) => void, id: string) =>
    next(JOB_ID.test(id) ? undefined : new NotFoundError(`No route for ${req.method} ${pathOf(req)}.`)),
  );
  const useGet = refuse((req) => `${req.method} ${pathOf(req)} is not supported; use GET.`);
  const useGetOrPost = refuse((req) => `${req.method} /jobs is not supported; use GET or POST.`);
  router.all(
    '/callback-key',
    handle((req, res, ctx) => sendCallbackKey(req, res, ctx.caller, ctx.callbackSecret)),
  );
  router
    .route('/jobs')
    .head(useGetOrPost)
    .get(handle(listJobsRoute))
    .post(handle(createJobRoute))
    .all(useGetOrPost);
  router.route('/jobs/:id').head(useGet).get(handle(getJobRoute)).all(useGet);
  router.route('/jobs/:id/results').head(useGet).get(handle(resultsRoute)).all(useGet);
  router.route('/jobs/:id/events').head(useGet).get(handle(eventsRoute)).all(useGet);
  router
    .route('/jobs/:id/cancel')
    .post(handle(cancelRoute))
    .all(refuse(() => 'Use POST to cancel a job.'));
  router
    .route('/jobs/:id/retry')
    .post(handle(retryRoute))
    .all(refuse(() => 'Use POST to retry a job.'));
  return router;
}

/** The jobs API adapter: routes, parses, calls the handler, maps errors. Never sees business logic. */
export function createIngestHandler(getDeps: () => Deps) {
  /** This instance's result and event streams, per caller (stream-slots.ts). */
  let slots: StreamSlots | undefined;
  const router = jobsRouter();
  return async (req: Request, res: Response): Promise<void> => {
    const deps = getDeps();
    slots ??= createStreamSlots(deps.config.streamsPerCaller);
    const log = deps.logger.child({ ...traceFields(req.headers, deps.config.projectId) });
    try {
      // The same URLs answer JSON or the page, by Accept.
      res.vary('Accept');
      // A browser that carries the caller's identity (a proxy in front adds it) must not be made to
      // change a job from another site.
      if (req.method !== 'GET' && req.header('sec-fetch-site') === 'cross-site') {
        throw new ForbiddenError('Cross-site requests may not change jobs.');
      }
      // Only a token verified here names the caller; X-Serverless-Authorization first (platform/caller.ts).
      const caller = await deps.callers({
        authorization: req.header('authorization'),
        serverlessAuthorization: req.header('x-serverless-authorization'),
      });
      const streams = slots;
      await new Promise<void>((done, failed) => {
        res.locals.route = {
          caller,
          deps: { ...ingestDeps(deps), logger: log },
          callbackSecret: deps.config.callbackSecret,
          slots: streams,
          done,
          failed,
        } satisfies RouteContext;
        // `/jobs/` and `/jobs//` are `/jobs` (the router itself allows one trailing slash).
        const path = pathOf(req);
        if (path !== req.path && req.url.startsWith(req.path))
          req.url = path + req.url.slice(req.path.length);
        // The router calls this only when no route answered (or a param was refused).
        router(req, res, (err?: unknown) =>
          failed(err ?? new NotFoundError(`No route for ${req.method} ${pathOf(req)}.`)),
        );
      });
    } catch (err) {
      const mapped = toHttpError(err);
      if (mapped.statusCode >= 500) log.error({ event: 'ingest.error', err }, 'request failed');
      else if (mapped.statusCode === 401)
        log.warn({ event: 'ingest.unauthenticated', reason: (err as Error).message }, 'refused a caller');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.status(mapped.statusCode).set(mapped.headers).json(mapped.body);
    }
  };
}
