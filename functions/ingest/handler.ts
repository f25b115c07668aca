import { randomUUID } from 'node:crypto';
import {
  counterShardsFor,
  type ItemState,
  isTerminalJob,
  itemIdForIndex,
  type JobMode,
} from '../core/jobs.js';
import type { Quotas } from '../core/quotas.js';
import { normalizeJobRequest, RequestProblem } from '../core/requests.js';
import { errorLine, type ResultLine, successLine } from '../core/results.js';
import { NotFoundError, PayloadTooLargeError, ValidationError } from '../platform/errors.js';
import {
  type FinishCursor,
  finishCursorOf,
  type ItemRecord,
  type JobStore,
  type JobView,
} from '../platform/job-store.js';
import type { Logger } from '../platform/logger.js';
import type { TaskQueue } from '../platform/task-queue.js';

export interface IngestDeps {
  store: JobStore;
  tasks: TaskQueue;
  quotas: Quotas;
  logger: Logger;
  /** Notifies a job's callback URL once it is terminal. */
  notify: (url: string, job: JobView) => Promise<void>;
  /** How often the event stream looks for newly finished items. */
  pollIntervalMs?: number;
}

export interface CreatedJob {
  id: string;
  status: 'queued';
  mode: JobMode;
  total: number;
  links: { self: string; results: string; events: string; cancel: string };
}

/** A line of `GET /jobs/{id}/results`: the result line, or the item's key and index while it is pending. */
export type ResultEntry = ResultLine | { key: string; index: number; state: 'pending' };

export function linksFor(id: string): CreatedJob['links'] {
  return {
    self: `/jobs/${id}`,
    results: `/jobs/${id}/results`,
    events: `/jobs/${id}/events`,
    cancel: `/jobs/${id}/cancel`,
  };
}

/**
 * `POST /jobs`: validates, stores the job and its items durably, and hands enqueuing to a control task
 * (resumable, so a 10,000-item job is answered as soon as it is stored).
 */
export async function createJob(body: unknown, deps: IngestDeps, source = 'api'): Promise<CreatedJob> {
  let normalized: ReturnType<typeof normalizeJobRequest>;
  try {
    normalized = normalizeJobRequest(body, deps.quotas);
  } catch (err) {
    if (err instanceof RequestProblem) {
      throw err.tooLarge
        ? new PayloadTooLargeError(err.message, err.problems)
        : new ValidationError(err.message, err.problems);
    }
    throw err;
  }
  if (normalized.mode === 'batch') {
    throw new ValidationError(
      'mode "batch" is not available in this deployment yet; use "realtime" or "auto".',
      [{ field: 'mode', message: 'batch is not available yet' }],
    );
  }
  const id = randomUUID();
  const mode: JobMode = 'realtime';
  await deps.store.createJob(
    {
      id,
      model: normalized.model,
      mode,
      total: normalized.items.length,
      source,
      counterShards: counterShardsFor(deps.quotas.models[normalized.model]!.rpm),
      ...(normalized.callbackUrl ? { callbackUrl: normalized.callbackUrl } : {}),
    },
    normalized.items,
  );
  await deps.tasks.enqueueControl({ kind: 'enqueue', jobId: id, from: 0 }, `${id}-enqueue-0`);
  deps.logger.info(
    { event: 'job.created', jobId: id, model: normalized.model, total: normalized.items.length, mode },
    'job created',
  );
  return { id, status: 'queued', mode, total: normalized.items.length, links: linksFor(id) };
}

export async function getJob(jobId: string, deps: IngestDeps): Promise<JobView> {
  const view = await deps.store.viewJob(jobId);
  if (!view) throw new NotFoundError(`Job ${jobId} not found.`);
  return view;
}

/** The result line of an item, or its pending entry. */
export function resultEntry(item: ItemRecord): ResultEntry {
  const state: ItemState = item.state;
  if (state === 'succeeded') return successLine(item.key, item.index, item.response);
  if (state === 'pending') return { key: item.key, index: item.index, state: 'pending' };
  return errorLine(
    item.key,
    item.index,
    item.error ?? { code: 500, status: 'UNKNOWN', message: 'no error recorded' },
  );
}

const encodeToken = (index: number) => Buffer.from(String(index)).toString('base64url');
function decodeToken(token: string): number {
  const n = Number(Buffer.from(token, 'base64url').toString());
  if (!Number.isInteger(n) || n < 0)
    throw new ValidationError('pageToken is not valid.', [{ field: 'pageToken', message: 'invalid' }]);
  return n;
}

/** `GET /jobs/{id}/results`: one page in input order. */
export async function getResultsPage(
  jobId: string,
  query: { pageToken?: string; pageSize?: string },
  deps: IngestDeps,
): Promise<{ results: ResultEntry[]; nextPageToken?: string }> {
  const job = await deps.store.getJob(jobId);
  if (!job) throw new NotFoundError(`Job ${jobId} not found.`);
  const pageSize = query.pageSize === undefined ? 100 : Number(query.pageSize);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
    throw new ValidationError('pageSize must be a whole number from 1 to 1000.', [
      { field: 'pageSize', message: 'out of range' },
    ]);
  }
  const start = query.pageToken ? decodeToken(query.pageToken) : 0;
  const page = await deps.store.listItems(jobId, {
    ...(start > 0 ? { afterId: itemIdForIndex(start - 1) } : {}),
    limit: pageSize,
  });
  const last = page[page.length - 1];
  const next = last && last.index + 1 < job.total ? encodeToken(last.index + 1) : undefined;
  return { results: page.map(resultEntry), ...(next ? { nextPageToken: next } : {}) };
}

/** `GET /jobs/{id}/results?format=jsonl`: every item in input order, one line each, streamed. */
export async function* streamResults(jobId: string, deps: IngestDeps): AsyncGenerator<string> {
  const job = await deps.store.getJob(jobId);
  if (!job) throw new NotFoundError(`Job ${jobId} not found.`);
  let afterId: string | undefined;
  for (;;) {
    const page = await deps.store.listItems(jobId, { ...(afterId ? { afterId } : {}), limit: 500 });
    for (const item of page) yield `${JSON.stringify(resultEntry(item))}\n`;
    if (page.length < 500) return;
    afterId = page[page.length - 1]!.id;
  }
}

export function encodeEventId(cursor: FinishCursor): string {
  return `${cursor.finishedAtMicros}.${cursor.itemId}`;
}

export function decodeEventId(id: string | undefined): FinishCursor | undefined {
  if (!id) return undefined;
  const m = /^(\d+)\.(\d+)$/.exec(id.trim());
  if (!m)
    throw new ValidationError('Last-Event-ID is not valid.', [
      { field: 'Last-Event-ID', message: 'invalid' },
    ]);
  return { finishedAtMicros: Number(m[1]), itemId: m[2]! };
}

/**
 * `GET /jobs/{id}/events`: one `result` event per finished item as they finish, then a `done` event
 * with the job's summary. `id:` fields make it resumable with `Last-Event-ID`.
 */
export async function* streamEvents(
  jobId: string,
  lastEventId: string | undefined,
  deps: IngestDeps,
  signal?: AbortSignal,
): AsyncGenerator<string> {
  let cursor = decodeEventId(lastEventId);
  const first = await deps.store.getJob(jobId);
  if (!first) throw new NotFoundError(`Job ${jobId} not found.`);
  const interval = deps.pollIntervalMs ?? 250;
  let idleSince = Date.now();
  yield `retry: 2000\n\n`;
  while (!signal?.aborted) {
    // Read the job before the items: if it was terminal then, this page holds every remaining result.
    const job = await deps.store.getJob(jobId);
    const page = await deps.store.listFinished(jobId, cursor, 500);
    for (const item of page) {
      cursor = finishCursorOf(item) ?? cursor;
      yield `id: ${cursor ? encodeEventId(cursor) : ''}\nevent: result\ndata: ${JSON.stringify(resultEntry(item))}\n\n`;
    }
    if (page.length > 0) idleSince = Date.now();
    if (page.length < 500 && job && isTerminalJob(job.status)) {
      const view = await deps.store.viewJob(jobId);
      yield `event: done\ndata: ${JSON.stringify(view)}\n\n`;
      return;
    }
    if (page.length < 500) {
      if (Date.now() - idleSince > 15_000) {
        idleSince = Date.now();
        yield `: keep-alive\n\n`;
      }
      await new Promise((r) => setTimeout(r, interval));
    }
  }
}

/** `POST /jobs/{id}/cancel`: pending items end as cancelled and no further Gemini calls are made. */
export async function cancelJob(jobId: string, deps: IngestDeps): Promise<JobView> {
  const result = await deps.store.cancelJob(jobId);
  if (!result) throw new NotFoundError(`Job ${jobId} not found.`);
  if (result.changed) {
    deps.logger.info({ event: 'job.cancelled', jobId, counts: result.view.counts }, 'job cancelled');
    const job = await deps.store.getJob(jobId);
    if (job?.callbackUrl) {
      await deps
        .notify(job.callbackUrl, result.view)
        .catch((err: Error) =>
          deps.logger.error({ event: 'job.callback_failed', jobId, err: err.message }, 'callback failed'),
        );
    }
  }
  return result.view;
}
