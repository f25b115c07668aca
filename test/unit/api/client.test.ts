import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createJobsClient, type JobsApiContractError, JobsApiError } from '../../../functions/api/client.js';
import type { JobEvent } from '../../../functions/api/events.js';
import type { CreatedJob, ResultEntry } from '../../../functions/api/jobs.js';
import { jobViewFixture } from '../../fixtures/job-view.js';

// The client against a small HTTP server on the loopback interface: real sockets, chunking and
// headers, no Google service.

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

type Route = (req: Seen, res: ServerResponse) => void | Promise<void>;

const servers: Server[] = [];

async function serve(route: Route): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
    seen.push(request);
    await route(request, res);
  });
  servers.push(server);
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((closed) => server.close(closed));
  }
});

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Writes `text` a few bytes at a time, pausing between writes so each goes out on its own. */
async function writeInPieces(res: ServerResponse, text: string, size: number): Promise<void> {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) {
    res.write(bytes.subarray(i, i + size));
    await delay(1);
  }
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

const jobView = jobViewFixture;

const created: CreatedJob = {
  id: 'job-1',
  status: 'queued',
  mode: 'realtime',
  total: 2,
  links: {
    self: '/jobs/job-1',
    results: '/jobs/job-1/results',
    events: '/jobs/job-1/events',
    cancel: '/jobs/job-1/cancel',
  },
};

describe('submit', () => {
  it.each([202, 200])('sends the Idempotency-Key, token and body; takes a %i as the job', async (status) => {
    // Arrange
    const server = await serve((_req, res) => json(res, status, created));
    const client = createJobsClient(`${server.url}/`, { token: 'tok-123' });

    // Act
    const job = await client.submit({ prompts: ['a', 'b'] }, { idempotencyKey: 'run-7' });

    // Assert
    expect(job).toEqual(created);
    const [request] = server.seen;
    expect(request).toMatchObject({ method: 'POST', url: '/jobs' });
    expect(request!.headers['idempotency-key']).toBe('run-7');
    expect(request!.headers.authorization).toBe('Bearer tok-123');
    expect(request!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request!.body)).toEqual({ prompts: ['a', 'b'] });
  });

  it('sends no Idempotency-Key when none is given', async () => {
    const server = await serve((_req, res) => json(res, 202, created));

    await createJobsClient(server.url).submit({ prompts: ['a'] });

    expect(server.seen[0]!.headers).not.toHaveProperty('idempotency-key');
    expect(server.seen[0]!.headers).not.toHaveProperty('authorization');
  });

  it('refuses to take a created job as a dry run estimate', async () => {
    // Arrange: a server that ignores ?dryRun=true stores the job and answers 202.
    const server = await serve((_req, res) => json(res, 202, created));

    // Act
    const err = await rejection(createJobsClient(server.url).estimate({ prompts: ['a'] }));

    // Assert
    expect(server.seen[0]!.url).toBe('/jobs?dryRun=true');
    expect(err.name).toBe('JobsApiContractError');
    expect(err.message).toMatch(/created job job-1/);
  });
});

describe('errors', () => {
  it('turns an error body into a JobsApiError with the status and the fields named', async () => {
    // Arrange
    const body = {
      error: {
        code: 400,
        status: 'INVALID_ARGUMENT',
        message: 'Invalid job: prompts[1] must not be empty.',
        details: [{ field: 'prompts[1]', message: 'must not be empty' }],
      },
    };
    const server = await serve((_req, res) => json(res, 400, body));

    // Act
    const err = await rejection(createJobsClient(server.url).submit({ prompts: ['ok', ''] }));

    // Assert
    expect(err).toBeInstanceOf(JobsApiError);
    const apiError = err as JobsApiError;
    expect(apiError.status).toBe(400);
    expect(apiError.body).toEqual(body);
    expect(apiError.raw).toBeUndefined();
    expect(apiError.message).toBe('POST /jobs answered 400: Invalid job: prompts[1] must not be empty.');
  });

  it('keeps a body that is not the error shape raw', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body>Bad gateway</body></html>');
    });

    const err = (await rejection(createJobsClient(server.url).get('job-1'))) as JobsApiError;

    expect(err).toBeInstanceOf(JobsApiError);
    expect(err.status).toBe(502);
    expect(err.body).toBeUndefined();
    expect(err.raw).toBe('<html><body>Bad gateway</body></html>');
    expect(err.message).toMatch(/^GET \/jobs\/job-1 answered 502: <html>/);
  });

  it('never carries the token, even when the server echoes it back', async () => {
    // Arrange
    const token = 'ya29.secret-identity-token';
    const server = await serve((req, res) =>
      json(res, 401, {
        error: { code: 401, status: 'UNAUTHENTICATED', message: `bad token ${req.headers.authorization}` },
      }),
    );

    // Act
    const err = (await rejection(createJobsClient(server.url, { token }).get('job-1'))) as JobsApiError;

    // Assert
    expect(err.status).toBe(401);
    expect(`${err.message} ${err.stack} ${JSON.stringify(err)}`).not.toContain(token);
    expect(err.message).toContain('[redacted]');
  });
});

describe('answers outside the contract', () => {
  it('rejects a job whose counts are not numbers, naming the field', async () => {
    const server = await serve((_req, res) =>
      json(res, 200, { ...jobView(), counts: { ...jobView().counts, total: '3' } }),
    );

    const err = await rejection(createJobsClient(server.url).get('job-1'));

    expect(err.name).toBe('JobsApiContractError');
    expect(err.message).toMatch(/^GET \/jobs\/job-1 answered outside the jobs API contract: counts\.total:/);
    expect((err as JobsApiContractError).issues[0]?.path).toEqual(['counts', 'total']);
  });

  it('rejects a status it does not know', async () => {
    const server = await serve((_req, res) => json(res, 200, { ...jobView(), status: 'paused' }));

    const err = await rejection(createJobsClient(server.url).get('job-1'));

    expect(err.message).toMatch(/status:/);
  });

  it('keeps fields the server adds', async () => {
    const stages = [{ name: 'translate', state: 'RUNNING' }];
    const server = await serve((_req, res) => json(res, 200, { ...jobView(), stages }));

    const job = await createJobsClient(server.url).get('job-1');

    expect(job).toMatchObject({ id: 'job-1', stages });
  });

  it('rejects a result event without an index', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('id: 1.1\nevent: result\ndata: {"key":"a","response":{}}\n\n');
    });

    const err = await rejection(collect(createJobsClient(server.url).events('job-1')));

    expect(err.name).toBe('JobsApiContractError');
    expect(err.message).toMatch(/event result 1\.1.*index/);
  });
});

describe('job status, pages and cancel', () => {
  it('polls until the job is terminal and returns it', async () => {
    // Arrange
    const states = ['queued', 'running', 'succeeded'] as const;
    let polls = 0;
    const server = await serve((_req, res) =>
      json(res, 200, jobView({ status: states[polls++] ?? 'failed' })),
    );

    // Act
    const job = await createJobsClient(server.url).waitFor('job-1', { timeoutMs: 5000, intervalMs: 5 });

    // Assert
    expect(job.status).toBe('succeeded');
    expect(server.seen.map((r) => `${r.method} ${r.url}`)).toEqual(Array(3).fill('GET /jobs/job-1'));
  });

  it('gives up after the timeout, saying where the job is', async () => {
    const server = await serve((_req, res) => json(res, 200, jobView()));

    const err = await rejection(
      createJobsClient(server.url).waitFor('job-1', { timeoutMs: 30, intervalMs: 5 }),
    );

    expect(err.message).toMatch(/^job job-1 not done after 30 ms: .*"status":"running"/);
  });

  it('stops when `until` holds', async () => {
    let polls = 0;
    const server = await serve((_req, res) =>
      json(res, 200, jobView({ notice: ++polls >= 2 ? 'daily quota spent' : null })),
    );

    const job = await createJobsClient(server.url).waitFor('job-1', {
      timeoutMs: 5000,
      intervalMs: 5,
      until: (j) => j.notice !== null,
    });

    expect(job.notice).toBe('daily quota spent');
    expect(server.seen).toHaveLength(2);
  });

  it('asks for a page by token and size, and cancels with a POST', async () => {
    // Arrange
    const page = { results: [{ key: 'a', index: 7, state: 'pending' }], nextPageToken: 'OA' };
    const server = await serve((req, res) =>
      req.method === 'POST' ? json(res, 200, jobView({ status: 'cancelled' })) : json(res, 200, page),
    );
    const client = createJobsClient(server.url);

    // Act
    const got = await client.resultsPage('job-1', { pageSize: 7, pageToken: 'Nw' });
    const cancelled = await client.cancel('job-1');

    // Assert
    expect(got).toEqual(page);
    expect(cancelled.status).toBe('cancelled');
    expect(server.seen.map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET /jobs/job-1/results?pageSize=7&pageToken=Nw',
      'POST /jobs/job-1/cancel',
    ]);
  });
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

describe('resultsJsonl', () => {
  const entries: ResultEntry[] = [
    {
      key: 'café',
      index: 0,
      response: { candidates: [{ content: { parts: [{ text: 'déjà vu ✓ 🚀' }] } }] },
    },
    { key: 'b', index: 1, error: { code: 429, status: 'RESOURCE_EXHAUSTED', message: 'quota' } },
    { key: 'c', index: 2, state: 'pending' },
  ];
  const body = entries.map((e) => `${JSON.stringify(e)}\n`).join('');

  it('parses lines split anywhere, inside a line and inside a character', async () => {
    // Arrange: 5-byte writes cut lines and multi-byte UTF-8 characters apart.
    const server = await serve(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      await writeInPieces(res, body, 5);
      res.end();
    });

    // Act
    const got = await collect(createJobsClient(server.url).resultsJsonl('job-1'));

    // Assert
    expect(got).toEqual(entries);
    expect(server.seen[0]!.url).toBe('/jobs/job-1/results?format=jsonl');
  });

  it('hands over the first line before the server has sent the last', async () => {
    // Arrange: the server holds the rest of the body until the reader has the first entry.
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let ended = false;
    const server = await serve(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(`${JSON.stringify(entries[0])}\n`);
      await released;
      res.end(body.slice(body.indexOf('\n') + 1));
      ended = true;
    });

    // Act
    const got: ResultEntry[] = [];
    const endedWhenFirstSeen: boolean[] = [];
    for await (const entry of createJobsClient(server.url).resultsJsonl('job-1')) {
      if (got.length === 0) {
        endedWhenFirstSeen.push(ended);
        release();
      }
      got.push(entry);
    }

    // Assert
    expect(endedWhenFirstSeen).toEqual([false]);
    expect(got).toEqual(entries);
  }, 5000);

  it('rejects an unknown job with the 404 on the first iteration', async () => {
    const server = await serve((_req, res) =>
      json(res, 404, { error: { code: 404, status: 'NOT_FOUND', message: 'Job nope not found.' } }),
    );

    const err = (await rejection(collect(createJobsClient(server.url).resultsJsonl('nope')))) as JobsApiError;

    expect(err).toBeInstanceOf(JobsApiError);
    expect(err.status).toBe(404);
    expect(err.body?.error.status).toBe('NOT_FOUND');
  });
});

describe('events', () => {
  const results = Array.from({ length: 5 }, (_, i) => ({
    id: `170000000000000${i}.00000000${i}`,
    data: { key: String(i), index: i, response: { text: `answer ${i}` } },
  }));
  const done = jobView({
    status: 'succeeded',
    counts: { total: 5, succeeded: 5, failed: 0, cancelled: 0, pending: 0 },
  });

  /**
   * An event stream like ingest's: a retry hint, a comment, events of other names, then `result`
   * events after Last-Event-ID, written a few bytes at a time. The first connection stops after two
   * results and stays open (the job is still running); a resumed one sends the rest and `done`.
   */
  async function eventServer() {
    const closed: boolean[] = [];
    const server = await serve(async (req, res) => {
      res.on('close', () => closed.push(true));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const after = req.headers['last-event-id'];
      const from = after ? results.findIndex((r) => r.id === after) + 1 : 0;
      const upTo = after ? results.length : 2;
      let text = 'retry: 2000\n\n: keep-alive\n\nevent: progress\ndata: {"n":1}\n\n';
      for (const r of results.slice(from, upTo)) {
        text += `id: ${r.id}\nevent: result\ndata: ${JSON.stringify(r.data)}\n\n`;
      }
      if (after) text += `event: done\ndata: ${JSON.stringify(done)}\n\n`;
      await writeInPieces(res, text, 7);
      if (after) res.end();
    });
    return { ...server, closed };
  }

  it('yields result events with their ids, resumes after Last-Event-ID, and ends with done', async () => {
    // Arrange
    const server = await eventServer();
    const client = createJobsClient(server.url);

    // Act: read two results, stop, then resume from the last id seen.
    const first: JobEvent[] = [];
    for await (const event of client.events('job-1')) {
      first.push(event);
      if (first.length === 2) break;
    }
    const rest = await collect(client.events('job-1', { lastEventId: first[1]!.id! }));

    // Assert
    expect(first).toEqual(results.slice(0, 2).map((r) => ({ event: 'result', id: r.id, data: r.data })));
    expect(server.seen[0]!.headers.accept).toBe('text/event-stream');
    expect(server.seen[0]!.headers).not.toHaveProperty('last-event-id');
    expect(server.seen[1]!.headers['last-event-id']).toBe(results[1]!.id);
    expect(rest).toEqual([
      ...results.slice(2).map((r) => ({ event: 'result', id: r.id, data: r.data })),
      { event: 'done', data: done },
    ]);
  });

  it('closes the connection when the reader stops early', async () => {
    // Arrange
    const server = await eventServer();

    // Act
    for await (const event of createJobsClient(server.url).events('job-1')) {
      if (event.event === 'result') break;
    }

    // Assert
    await vi.waitFor(() => expect(server.closed).toEqual([true]));
  });

  it('closes the connection when the caller aborts', async () => {
    // Arrange
    const server = await eventServer();
    const abort = new AbortController();

    // Act
    const err = await rejection(
      (async () => {
        for await (const event of createJobsClient(server.url).events('job-1', { signal: abort.signal })) {
          if (event.event === 'result' && event.data.index === 1) abort.abort();
        }
      })(),
    );

    // Assert
    expect(err.name).toBe('AbortError');
    await vi.waitFor(() => expect(server.closed).toEqual([true]));
  });
});
