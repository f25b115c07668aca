import type { Request, Response } from '@google-cloud/functions-framework';
import type { Deps } from '../deps.js';
import {
  ForbiddenError,
  MethodNotAllowedError,
  NotFoundError,
  toHttpError,
  ValidationError,
} from '../platform/errors.js';
import { traceFields } from '../platform/logger.js';
import { outsideDomain } from '../platform/runtime.js';
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

const JOB_PATH = /^\/jobs\/([A-Za-z0-9-]{1,64})(\/results|\/events|\/cancel|\/retry)?\/?$/;

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

/** The jobs API adapter: routes, parses, calls the handler, maps errors. Never sees business logic. */
export function createIngestHandler(getDeps: () => Deps) {
  /** This instance's result and event streams, per caller (stream-slots.ts). */
  let slots: StreamSlots | undefined;
  return (req: Request, res: Response): Promise<void> =>
    outsideDomain(async () => {
      const deps = getDeps();
      slots ??= createStreamSlots(deps.config.streamsPerCaller);
      const log = deps.logger.child({ ...traceFields(req.headers, deps.config.projectId) });
      const handlerDeps = { ...ingestDeps(deps), logger: log };
      try {
        const path = req.path.replace(/\/+$/, '') || '/';
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
        if (path === '/callback-key') return sendCallbackKey(req, res, caller, deps.config.callbackSecret);
        if (path === '/jobs') {
          if (wantsHtml(req)) {
            res.status(200).set(pageHeaders()).send(jobsPageHtml());
            return;
          }
          if (req.method === 'GET') {
            res.status(200).json(await listJobs(caller, req.query as Record<string, string>, handlerDeps));
            return;
          }
          if (req.method !== 'POST')
            throw new MethodNotAllowedError(`${req.method} /jobs is not supported; use GET or POST.`);
          // JSON only, from this origin (front-door.ts): anything else would reach validation as a Buffer
          // or a string (and a few MB of bytes would come back as as many "unknown key" problems).
          checkWrite(req);
          // The body is within LIMITS.maxBodyBytes, on the wire and inflated: the framework's parser
          // refused anything larger before buffering it (platform/body-limit.ts).
          if (req.query.dryRun === 'true') {
            res.status(200).json(dryRunJob(req.body, handlerDeps, caller.id));
            return;
          }
          const key = idempotencyKey(req);
          const { replayed, created } = await createJob(req.body, handlerDeps, {
            owner: caller.id,
            ...(key ? { idempotency: { key, caller: caller.id } } : {}),
          });
          res
            .status(replayed ? 200 : 202)
            .location(created.links.self)
            .json(created);
          return;
        }
        const m = JOB_PATH.exec(path);
        if (!m) throw new NotFoundError(`No route for ${req.method} ${path}.`);
        const [, id, sub] = m as unknown as [string, string, string | undefined];
        if (sub === '/cancel') {
          if (req.method !== 'POST') throw new MethodNotAllowedError('Use POST to cancel a job.');
          checkWrite(req);
          res.status(200).json(await cancelJob(id, caller, handlerDeps));
          return;
        }
        if (sub === '/retry') {
          if (req.method !== 'POST') throw new MethodNotAllowedError('Use POST to retry a job.');
          checkWrite(req);
          const key = idempotencyKey(req);
          const { replayed, created } = await retryJob(
            id,
            req.body,
            caller,
            handlerDeps,
            key ? { key, caller: caller.id } : undefined,
          );
          res
            .status(replayed ? 200 : 202)
            .location(created.links.self)
            .json(created);
          return;
        }
        if (req.method !== 'GET')
          throw new MethodNotAllowedError(`${req.method} ${path} is not supported; use GET.`);
        if (!sub) {
          if (wantsHtml(req)) {
            await ownedJob(id, caller, handlerDeps);
            res.status(200).set(pageHeaders()).send(jobPageHtml(id));
            return;
          }
          res.status(200).json(await getJob(id, caller, handlerDeps));
          return;
        }
        if (sub === '/results') {
          const query = req.query as Record<string, string | undefined>;
          if (query.format === 'jsonl') {
            await inSlot(slots, caller.id, () =>
              pipeStream(res, streamResults(id, caller, handlerDeps), 'application/x-ndjson'),
            );
            return;
          }
          res.status(200).json(await getResultsPage(id, query, caller, handlerDeps));
          return;
        }
        const abort = new AbortController();
        res.on('close', () => abort.abort());
        await inSlot(slots, caller.id, () =>
          pipeStream(
            res,
            streamEvents(id, req.header('last-event-id'), caller, handlerDeps, abort.signal),
            'text/event-stream',
          ),
        );
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
    });
}
