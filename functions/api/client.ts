/**
 * The one typed client of the jobs API, used by the CLI, the tests and the benchmark. Every successful
 * answer is parsed with the contract's schema (`./jobs.ts`), so a server that drifts from the contract
 * fails loudly with {@link JobsApiContractError} instead of handing `undefined`s downstream; fields the
 * server adds are kept. Every non-2xx answer becomes a {@link JobsApiError}.
 *
 * Only web-standard APIs (fetch, web streams, AbortSignal), a streaming SSE parser and Node's
 * `timers/promises` for its waits (`./sleep.ts`): it runs on Node 20+. The token is sent as a header and never appears in an error.
 */
import { type EventSourceMessage, EventSourceParserStream } from 'eventsource-parser/stream';
import type { z } from 'zod';
import { describeIssues, JobsApiContractError, JobsApiError, parseJson } from './client-errors.js';
import type { JobsClient } from './client-interface.js';
import type {
  EventsOptions,
  JobsClientOptions,
  ListOptions,
  ResultsPageOptions,
  SubmitOptions,
  WaitOptions,
} from './client-options.js';
import { type JobEvent, jobEventDataSchemas } from './events.js';
import {
  createdJobSchema,
  type Declared,
  errorBodySchema,
  isTerminalStatus,
  type JobView,
  jobEstimateSchema,
  jobListSchema,
  jobViewSchema,
  linksFor,
  resultEntrySchema,
  resultsPageSchema,
} from './jobs.js';
import { sleep } from './sleep.js';
import { callbackKeySchema } from './webhooks.js';

export type { JobsClient } from './client-interface.js';
export {
  type CallbackKey,
  type CallbackPayload,
  verifyCallback,
  verifyWebhook,
  WebhookVerificationError,
} from './webhooks.js';
export type { EventsOptions, JobsClientOptions, ListOptions, ResultsPageOptions, SubmitOptions, WaitOptions };
export { JobsApiContractError, JobsApiError, sleep };

/**
 * A client of the jobs API at `baseUrl` (the ingest function's URL: the local cloud's `ingestUrl`, or
 * the deployed function's URL with `token`).
 */
export function createJobsClient(baseUrl: string, options: JobsClientOptions = {}): JobsClient {
  const base = baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  let token = options.token;
  /** Keeps the token out of anything an error carries, should a server or proxy echo it back. */
  const redact = (text: string) => (token ? text.replaceAll(token, '[redacted]') : text);

  async function send(
    method: 'GET' | 'POST',
    path: string,
    init: { headers?: Record<string, string>; body?: unknown; signal?: AbortSignal | undefined } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    if (options.tokenProvider) token = await options.tokenProvider();
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await doFetch(`${base}${path}`, {
      method,
      headers,
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    });
    if (!res.ok) throw await apiError(res, `${method} ${path}`);
    return res;
  }

  async function apiError(res: Response, what: string): Promise<JobsApiError> {
    const text = redact(await res.text().catch(() => ''));
    const parsed = errorBodySchema.safeParse(parseJson(text));
    return parsed.success
      ? new JobsApiError(res.status, parsed.data, undefined, what)
      : new JobsApiError(res.status, undefined, text, what);
  }

  async function answer<S extends z.ZodType>(
    res: Response,
    schema: S,
    what: string,
  ): Promise<Declared<z.infer<S>>> {
    const text = await res.text();
    return parseWith(schema, parseJson(text), what, text);
  }

  function parseWith<S extends z.ZodType>(
    schema: S,
    value: unknown,
    what: string,
    text: string,
  ): Declared<z.infer<S>> {
    if (value === undefined) {
      throw new JobsApiContractError(what, `not JSON: ${JSON.stringify(redact(text).slice(0, 200))}`);
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const issues = parsed.error.issues;
      throw new JobsApiContractError(what, describeIssues(issues).slice(0, 5).join('; '), issues);
    }
    return parsed.data as Declared<z.infer<S>>;
  }

  async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += value;
        let start = 0;
        for (let cut = buffer.indexOf('\n'); cut >= 0; cut = buffer.indexOf('\n', start)) {
          yield buffer.slice(start, cut);
          start = cut + 1;
        }
        buffer = buffer.slice(start);
      }
      if (buffer) yield buffer;
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }

  const client: JobsClient = {
    async submit(body, opts = {}) {
      const res = await send('POST', '/jobs', {
        body,
        headers: opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {},
        signal: opts.signal,
      });
      return answer(res, createdJobSchema, 'POST /jobs');
    },

    async estimate(body, opts = {}) {
      const what = 'POST /jobs?dryRun=true';
      const res = await send('POST', '/jobs?dryRun=true', { body, signal: opts.signal });
      if (res.status === 202) {
        const created = createdJobSchema.safeParse(parseJson(await res.text()));
        const id = created.success ? created.data.id : 'unknown';
        throw new JobsApiContractError(what, `202: the server does not do dry runs and created job ${id}`);
      }
      return answer(res, jobEstimateSchema, what);
    },

    async get(id, opts = {}) {
      const path = linksFor(id).self;
      return answer(await send('GET', path, { signal: opts.signal }), jobViewSchema, `GET ${path}`);
    },

    async waitFor(id, opts) {
      const until = opts.until ?? ((job: JobView) => isTerminalStatus(job.status));
      const intervalMs = opts.intervalMs ?? 500;
      const deadline = Date.now() + opts.timeoutMs;
      for (;;) {
        const job = await client.get(id, { signal: opts.signal });
        if (until(job)) return job;
        if (Date.now() > deadline) {
          throw new Error(`job ${id} not done after ${opts.timeoutMs} ms: ${JSON.stringify(job)}`);
        }
        await sleep(intervalMs, opts.signal);
      }
    },

    async resultsPage(id, opts = {}) {
      const query = new URLSearchParams();
      if (opts.pageSize !== undefined) query.set('pageSize', String(opts.pageSize));
      if (opts.pageToken) query.set('pageToken', opts.pageToken);
      const path = `${linksFor(id).results}${query.size ? `?${query}` : ''}`;
      return answer(await send('GET', path, { signal: opts.signal }), resultsPageSchema, `GET ${path}`);
    },

    async *resultsJsonl(id, opts = {}) {
      const path = `${linksFor(id).results}?format=jsonl`;
      const what = `GET ${path}`;
      const res = await send('GET', path, {
        headers: { accept: 'application/x-ndjson' },
        signal: opts.signal,
      });
      if (!res.body) throw new JobsApiContractError(what, 'no body');
      let n = 0;
      for await (const line of lines(res.body)) {
        n++;
        if (!line.trim()) continue;
        yield parseWith(resultEntrySchema, parseJson(line), `${what} (line ${n})`, line);
      }
    },

    async *events(id, opts = {}) {
      const path = linksFor(id).events;
      const what = `GET ${path}`;
      // Ours, so that leaving the loop early (break, throw) closes the connection.
      const stop = new AbortController();
      const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
      try {
        const res = await send('GET', path, {
          headers: {
            accept: 'text/event-stream',
            ...(opts.lastEventId ? { 'last-event-id': opts.lastEventId } : {}),
          },
          signal,
        });
        if (!res.body) throw new JobsApiContractError(what, 'no body');
        const reader = res.body
          .pipeThrough(new TextDecoderStream())
          .pipeThrough(new EventSourceParserStream())
          .getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          const event = parseEvent(value, what);
          if (event) yield event;
        }
      } finally {
        stop.abort();
      }
    },

    async cancel(id, opts = {}) {
      const path = linksFor(id).cancel;
      // Every POST of the API takes a JSON body (the cancel's is empty: `{}`).
      return answer(
        await send('POST', path, { body: {}, signal: opts.signal }),
        jobViewSchema,
        `POST ${path}`,
      );
    },

    async retry(id, body = {}, opts = {}) {
      const path = `${linksFor(id).self}/retry`;
      const res = await send('POST', path, {
        body,
        headers: opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {},
        signal: opts.signal,
      });
      return answer(res, createdJobSchema, `POST ${path}`);
    },

    async list(opts = {}) {
      const query = new URLSearchParams();
      if (opts.pageSize !== undefined) query.set('pageSize', String(opts.pageSize));
      if (opts.pageToken) query.set('pageToken', opts.pageToken);
      const path = `/jobs${query.size ? `?${query}` : ''}`;
      return answer(await send('GET', path, { signal: opts.signal }), jobListSchema, `GET ${path}`);
    },

    async callbackKey(opts = {}) {
      const res = await send('GET', '/callback-key', { signal: opts.signal });
      return answer(res, callbackKeySchema, 'GET /callback-key');
    },
  };

  function parseEvent(message: EventSourceMessage, what: string): JobEvent | undefined {
    const head = message.id !== undefined ? { id: message.id } : {};
    const where = `${what} (event ${message.event ?? 'message'}${message.id ? ` ${message.id}` : ''})`;
    const data = () => parseJson(message.data);
    if (message.event === 'result') {
      return {
        event: 'result',
        ...head,
        data: parseWith(jobEventDataSchemas.result, data(), where, message.data),
      };
    }
    if (message.event === 'done') {
      return {
        event: 'done',
        ...head,
        data: parseWith(jobEventDataSchemas.done, data(), where, message.data),
      };
    }
    return undefined;
  }

  return client;
}
