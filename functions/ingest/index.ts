import type { Request, Response } from '@google-cloud/functions-framework';
import { LIMITS } from '../core/requests.js';
import type { Deps } from '../platform/deps.js';
import {
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  toHttpError,
  ValidationError,
} from '../platform/errors.js';
import { traceFields } from '../platform/logger.js';
import { outsideDomain } from '../platform/runtime.js';
import {
  cancelJob,
  createJob,
  getJob,
  getResultsPage,
  type IngestDeps,
  streamEvents,
  streamResults,
} from './handler.js';

export function ingestDeps(deps: Deps): IngestDeps {
  return {
    lifecycle: deps.lifecycle,
    objects: deps.objects,
    quotas: deps.config.quotas,
    logger: deps.logger,
  };
}

const JOB_PATH = /^\/jobs\/([A-Za-z0-9-]{1,64})(\/results|\/events|\/cancel)?\/?$/;

/** The jobs API adapter: routes, parses, calls the handler, maps errors. Never sees business logic. */
export function createIngestHandler(getDeps: () => Deps) {
  return (req: Request, res: Response): Promise<void> =>
    outsideDomain(async () => {
      const deps = getDeps();
      const log = deps.logger.child({ ...traceFields(req.headers, deps.config.projectId) });
      const handlerDeps = { ...ingestDeps(deps), logger: log };
      try {
        const path = req.path.replace(/\/+$/, '') || '/';
        if (path === '/jobs') {
          if (req.method !== 'POST')
            throw new MethodNotAllowedError(`${req.method} /jobs is not supported; use POST.`);
          if ((req.rawBody?.length ?? 0) > LIMITS.maxBodyBytes) {
            throw new PayloadTooLargeError(
              `The body is larger than ${LIMITS.maxBodyBytes} bytes; send a JSONL file to the bucket instead.`,
            );
          }
          const key = req.header('idempotency-key');
          if (key !== undefined && !/^[\x21-\x7e]{1,255}$/.test(key)) {
            throw new ValidationError('Idempotency-Key must be 1 to 255 visible ASCII characters.', [
              { field: 'Idempotency-Key', message: 'invalid' },
            ]);
          }
          const { replayed, created } = await createJob(req.body, handlerDeps, {
            ...(key ? { idempotency: { key } } : {}),
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
          res.status(200).json(await cancelJob(id, handlerDeps));
          return;
        }
        if (req.method !== 'GET')
          throw new MethodNotAllowedError(`${req.method} ${path} is not supported; use GET.`);
        if (!sub) {
          res.status(200).json(await getJob(id, handlerDeps));
          return;
        }
        if (sub === '/results') {
          const query = req.query as Record<string, string | undefined>;
          if (query.format === 'jsonl') {
            await pipeStream(res, streamResults(id, handlerDeps), 'application/x-ndjson');
            return;
          }
          res.status(200).json(await getResultsPage(id, query, handlerDeps));
          return;
        }
        const abort = new AbortController();
        res.on('close', () => abort.abort());
        await pipeStream(
          res,
          streamEvents(id, req.header('last-event-id'), handlerDeps, abort.signal),
          'text/event-stream',
        );
      } catch (err) {
        const mapped = toHttpError(err);
        if (mapped.statusCode >= 500) log.error({ event: 'ingest.error', err }, 'request failed');
        if (res.headersSent) {
          res.destroy();
          return;
        }
        res.status(mapped.statusCode).set(mapped.headers).json(mapped.body);
      }
    });
}

/**
 * Writes a generator to the response. The first chunk is read before the headers go out, so an
 * error such as an unknown job still gets its proper status.
 */
async function pipeStream(res: Response, chunks: AsyncGenerator<string>, contentType: string): Promise<void> {
  const first = await chunks.next();
  res
    .status(200)
    .set({ 'content-type': contentType, 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  if (!first.done) res.write(first.value);
  for await (const chunk of chunks) {
    if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
    if (res.destroyed) break;
  }
  res.end();
}
