import { Agent, type ClientRequest, request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createJob, idToken, stack, waitForJob } from '../helpers/e2e.js';

// The catalogue of bad input to the jobs API, as a table a reviewer can read: what is sent, and the
// answer a user gets. Every answer is `{error:{code, status, message}}` with the right 4xx (the
// framework's body parser included), never a stack trace, never an internal address; and nothing
// that was refused became a job. The bucket's bad lines and files are in hostile-bucket.test.ts,
// bad media in hostile-media.test.ts.

const MODEL = 'gemini-2.5-flash';
const ok = { prompts: ['a'] };
const prompt = (request: Record<string, unknown>) => ({
  requests: [{ request: { contents: [{ parts: [{ text: 'x' }] }], ...request } }],
});

interface Case {
  what: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string or bytes as they are. */
  body?: unknown;
  /** Sent as this identity (a token of the local issuer); the local developer otherwise. */
  as?: string;
  status: number;
  /** The message a user reads, or the field named in details. */
  says: RegExp;
}

const json = { 'content-type': 'application/json' };

const CREATE: Case[] = [
  { what: 'malformed JSON', headers: json, body: '{"prompts": [', status: 400, says: /not valid JSON/ },
  { what: 'truncated JSON', headers: json, body: '{"prompts": ["a"]', status: 400, says: /not valid JSON/ },
  { what: 'JSON null', headers: json, body: 'null', status: 400, says: /not valid JSON|JSON object/ },
  { what: 'a JSON array', headers: json, body: '[1, 2]', status: 400, says: /JSON object/ },
  {
    what: 'a JSON string',
    headers: json,
    body: '"prompts"',
    status: 400,
    says: /not valid JSON|JSON object/,
  },
  { what: 'an empty body', headers: json, body: '', status: 400, says: /prompts or requests/ },
  {
    what: 'text/plain',
    headers: { 'content-type': 'text/plain' },
    body: 'hello',
    status: 415,
    says: /application\/json/,
  },
  {
    what: 'a form',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'prompts=a',
    status: 415,
    says: /application\/json/,
  },
  {
    what: 'bytes',
    headers: { 'content-type': 'application/octet-stream' },
    body: Buffer.alloc(4096, 7),
    status: 415,
    says: /application\/json/,
  },
  {
    what: 'no content type',
    headers: {},
    body: Buffer.from('{"prompts":["a"]}'),
    status: 415,
    says: /application\/json/,
  },
  {
    what: 'a charset JSON is never in',
    headers: { 'content-type': 'application/json; charset=ebcdic' },
    body: '{}',
    status: 415,
    says: /charset/,
  },
  {
    what: 'a body over 32 MiB',
    headers: json,
    body: `{"prompts":["${'a'.repeat(33 * 1024 * 1024)}"]}`,
    status: 413,
    says: /larger than/,
  },
  { what: 'prompts not an array', body: { prompts: 'a' }, status: 400, says: /prompts/ },
  { what: 'a prompt that is a number', body: { prompts: [42] }, status: 400, says: /prompts\[0\]/ },
  { what: 'no items', body: { prompts: [] }, status: 400, says: /no items/ },
  { what: 'an empty prompt', body: { prompts: [''] }, status: 400, says: /must not be empty/ },
  {
    what: 'prompts and requests',
    body: { prompts: ['a'], requests: [{ prompt: 'b' }] },
    status: 400,
    says: /exactly one/,
  },
  {
    what: '50,001 items',
    body: { prompts: Array.from({ length: 50_001 }, () => 'a') },
    status: 413,
    says: /at most 50000/,
  },
  {
    what: 'an item over 256 KiB',
    body: { prompts: ['a'.repeat(300 * 1024)] },
    status: 413,
    says: /bytes > 262144/,
  },
  {
    what: 'an unknown model',
    body: { model: 'gemini-0', prompts: ['a'] },
    status: 400,
    says: /Unknown model gemini-0/,
  },
  {
    what: 'model "constructor"',
    body: { model: 'constructor', prompts: ['a'] },
    status: 400,
    says: /Unknown model/,
  },
  {
    what: 'model "__proto__"',
    body: { model: '__proto__', prompts: ['a'] },
    status: 400,
    says: /Unknown model/,
  },
  {
    what: 'model "toString"',
    body: { model: 'toString', prompts: ['a'] },
    status: 400,
    says: /Unknown model/,
  },
  {
    what: 'a model path',
    body: { model: 'models/../../x', prompts: ['a'] },
    status: 400,
    says: /Unknown model/,
  },
  { what: 'an unknown mode', body: { mode: 'turbo', prompts: ['a'] }, status: 400, says: /mode/ },
  { what: 'an unknown field', body: { prompts: ['a'], temperature: 2 }, status: 400, says: /temperature/ },
  { what: 'config not an object', body: { prompts: ['a'], config: [1] }, status: 400, says: /config/ },
  {
    what: '8 candidates',
    body: { prompts: ['a'], config: { candidateCount: 8 } },
    status: 400,
    says: /candidateCount 8 > 1/,
  },
  {
    what: 'a million output tokens',
    body: { prompts: ['a'], config: { maxOutputTokens: 1_000_000 } },
    status: 400,
    says: /maxOutputTokens 1000000 > 65536/,
  },
  {
    what: 'Google Search as a tool',
    body: prompt({ tools: [{ googleSearch: {} }] }),
    status: 400,
    says: /googleSearch/,
  },
  {
    what: 'code execution as a tool',
    body: prompt({ tools: [{ codeExecution: {} }] }),
    status: 400,
    says: /codeExecution/,
  },
  {
    what: "someone's cached content",
    body: prompt({ cachedContent: 'cachedContents/x' }),
    status: 400,
    says: /cachedContent/,
  },
  {
    what: 'an ftp callback',
    body: { ...ok, callbackUrl: 'ftp://example.com/x' },
    status: 400,
    says: /callbackUrl/,
  },
  {
    what: 'a callback with credentials',
    body: { ...ok, callbackUrl: 'https://user:pw@example.com/x' },
    status: 400,
    says: /credentials/,
  },
  {
    what: 'a callback URL of 3,000 characters',
    body: { ...ok, callbackUrl: `https://example.com/${'a'.repeat(3000)}` },
    status: 400,
    says: /2048/,
  },
  {
    what: 'a javascript: callback',
    body: { ...ok, callbackUrl: 'javascript:alert(1)' },
    status: 400,
    says: /callbackUrl/,
  },
  {
    what: 'http media',
    body: { requests: [{ prompt: 'a', media: [{ url: 'http://example.com/a.png' }] }] },
    status: 400,
    says: /https/,
  },
  {
    what: "another caller's inbox as media",
    body: { requests: [{ prompt: 'a', media: [{ gcsUri: 'gs://fanout-e2e-fanout/inbox/their.jsonl' }] }] },
    status: 400,
    says: /outside the allowed locations/,
  },
  {
    what: 'results/ as media',
    body: { requests: [{ prompt: 'a', media: [{ gcsUri: 'gs://fanout-e2e-fanout/results/x.jsonl' }] }] },
    status: 400,
    says: /outside the allowed locations/,
  },
  {
    what: 'another bucket as media',
    body: { requests: [{ prompt: 'a', media: [{ gcsUri: 'gs://someone-else/media/a.png' }] }] },
    status: 400,
    says: /outside the allowed locations/,
  },
  {
    what: 'a path trick in a gs:// name',
    body: {
      requests: [{ prompt: 'a', media: [{ gcsUri: 'gs://fanout-e2e-fanout/media/../inbox/x.jsonl' }] }],
    },
    status: 400,
    says: /path trick/,
  },
  {
    what: 'media with url and gcsUri',
    body: {
      requests: [{ prompt: 'a', media: [{ url: 'https://example.com/a.png', gcsUri: 'gs://b/a.png' }] }],
    },
    status: 400,
    says: /exactly one of url or gcsUri/,
  },
  {
    what: '17 media on one item',
    body: {
      requests: [
        { prompt: 'a', media: Array.from({ length: 17 }, () => ({ url: 'https://example.com/a.png' })) },
      ],
    },
    status: 400,
    says: /media/,
  },
  {
    what: 'a duplicate key',
    body: {
      requests: [
        { key: 'k', prompt: 'a' },
        { key: 'k', prompt: 'b' },
      ],
    },
    status: 400,
    says: /duplicate key "k"/,
  },
  {
    what: 'a key of 300 characters',
    body: { requests: [{ key: 'k'.repeat(300), prompt: 'a' }] },
    status: 400,
    says: /key/,
  },
  {
    what: 'a request without contents',
    body: { requests: [{ request: {} }] },
    status: 400,
    says: /contents/,
  },
  {
    what: 'an Idempotency-Key with a newline',
    headers: { ...json, 'idempotency-key': 'a\tb' },
    body: ok,
    status: 400,
    says: /Idempotency-Key/,
  },
  {
    what: 'an Idempotency-Key of 300 characters',
    headers: { ...json, 'idempotency-key': 'k'.repeat(300) },
    body: ok,
    status: 400,
    says: /Idempotency-Key/,
  },
];

const ROUTES: Case[] = [
  {
    what: 'an unknown job',
    method: 'GET',
    path: '/jobs/00000000-0000-0000-0000-000000000000',
    status: 404,
    says: /not found/,
  },
  {
    what: 'an unknown job, its path ending in slashes (routed as without them)',
    method: 'GET',
    path: '/jobs/00000000-0000-0000-0000-000000000000//',
    status: 404,
    says: /not found/,
  },
  { what: 'an unknown route', method: 'GET', path: '/admin', status: 404, says: /No route/ },
  {
    what: 'a traversal in the path',
    method: 'GET',
    path: '/jobs/..%2f..%2fetc%2fpasswd',
    status: 404,
    says: /No route/,
  },
  {
    what: 'a job id of 65 characters',
    method: 'GET',
    path: `/jobs/${'a'.repeat(65)}`,
    status: 404,
    says: /No route/,
  },
  { what: 'DELETE /jobs', method: 'DELETE', path: '/jobs', status: 405, says: /not supported/ },
  { what: 'PUT on a job', method: 'PUT', path: '/jobs/abc', status: 405, says: /not supported/ },
  { what: 'GET on cancel', method: 'GET', path: '/jobs/abc/cancel', status: 405, says: /POST/ },
  { what: 'a list page of 1,000', method: 'GET', path: '/jobs?pageSize=1000', status: 400, says: /pageSize/ },
  {
    what: 'a list page token that is not one',
    method: 'GET',
    path: '/jobs?pageToken=%2F%2F%2F',
    status: 400,
    says: /pageToken/,
  },
  {
    what: 'a token that is not a valid ID token',
    method: 'GET',
    path: '/jobs',
    headers: { authorization: 'Bearer not-a-token' },
    status: 401,
    says: /./,
  },
  {
    what: 'a cross-site POST',
    method: 'POST',
    path: '/jobs',
    headers: { ...json, 'sec-fetch-site': 'cross-site' },
    body: ok,
    status: 403,
    says: /Cross-site/,
  },
  {
    what: 'every job, asked by a caller who is not an admin',
    method: 'GET',
    path: '/jobs?all=true',
    as: 'mallory@example.com',
    status: 403,
    says: /admins/,
  },
];

async function send(c: Case): Promise<{ status: number; text: string }> {
  const body =
    c.body === undefined
      ? undefined
      : typeof c.body === 'string' || Buffer.isBuffer(c.body)
        ? c.body
        : JSON.stringify(c.body);
  const headers = {
    ...(c.headers ?? (typeof c.body === 'object' && !Buffer.isBuffer(c.body) ? json : {})),
    ...(c.as ? { authorization: `Bearer ${await idToken(c.as)}` } : {}),
  };
  const res = await fetch(`${stack().ingestUrl}${c.path ?? '/jobs'}`, {
    method: c.method ?? 'POST',
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  return { status: res.status, text: await res.text() };
}

/** The answer is the API's JSON error, saying `says`, with nothing internal in it. */
function expectError(c: Case, answer: { status: number; text: string }): void {
  expect(answer.status, c.what).toBe(c.status);
  const parsed = JSON.parse(answer.text) as {
    error: { code: number; status: string; message: string; details?: unknown };
  };
  expect(parsed.error.code, c.what).toBe(c.status);
  expect(`${parsed.error.message} ${JSON.stringify(parsed.error.details ?? '')}`, c.what).toMatch(c.says);
  expect(answer.text, c.what).not.toMatch(/at .*\.[jt]s:\d+|127\.0\.0\.1|node_modules/);
}

describe('hostile input to the jobs API', () => {
  it.each(CREATE.map((c) => [c.what, c] as const))('POST /jobs with %s', async (_, c) => {
    expectError(c, await send(c));
  });

  it.each(ROUTES.map((c) => [c.what, c] as const))('%s', async (_, c) => {
    expectError(c, await send(c));
  });

  it('nothing refused became a job, and a good job still runs beside them', async () => {
    // Arrange: the caller's jobs before and after the whole catalogue ran in this file.
    const token = await idToken('catalogue@example.com');
    const list = async () =>
      (await (
        await fetch(`${stack().ingestUrl}/jobs?pageSize=100`, {
          headers: { authorization: `Bearer ${token}` },
        })
      ).json()) as {
        jobs: unknown[];
      };
    const before = (await list()).jobs.length;
    for (const c of CREATE) {
      const answer = await send({
        ...c,
        headers: { ...(c.headers ?? json), authorization: `Bearer ${token}` },
      });
      expect(answer.status, c.what).toBe(c.status);
    }

    // Act
    const id = await createJob({ model: MODEL, prompts: ['still fine'] });
    const job = await waitForJob(id, 60_000);

    // Assert
    expect((await list()).jobs.length).toBe(before);
    expect(job).toMatchObject({ status: 'succeeded', counts: { succeeded: 1 } });
  });

  it("answers 404 for another caller's job on every route, as for a job that does not exist", async () => {
    // Arrange: alice's job.
    const alice = { authorization: `Bearer ${await idToken('alice@example.com')}` };
    const bob = { authorization: `Bearer ${await idToken('bob@example.com')}` };
    const created = await fetch(`${stack().ingestUrl}/jobs`, {
      method: 'POST',
      headers: { ...json, ...alice },
      body: JSON.stringify({ model: MODEL, prompts: ['mine'] }),
    });
    const { id } = (await created.json()) as { id: string };

    // Act: bob on every route.
    const routes: Array<[string, string, Record<string, string>]> = [
      ['GET', `/jobs/${id}`, {}],
      ['GET', `/jobs/${id}`, { accept: 'text/html' }],
      ['GET', `/jobs/${id}/results`, {}],
      ['GET', `/jobs/${id}/results?format=jsonl`, {}],
      ['GET', `/jobs/${id}/events`, { accept: 'text/event-stream' }],
      ['POST', `/jobs/${id}/cancel`, json],
    ];
    const answers = await Promise.all(
      routes.map(([method, path, headers]) =>
        fetch(`${stack().ingestUrl}${path}`, { method, headers: { ...headers, ...bob } }).then(async (r) => ({
          status: r.status,
          body: await r.text(),
        })),
      ),
    );
    const bobsList = (await (await fetch(`${stack().ingestUrl}/jobs`, { headers: bob })).json()) as {
      jobs: Array<{ id: string }>;
    };
    const alicesList = (await (await fetch(`${stack().ingestUrl}/jobs`, { headers: alice })).json()) as {
      jobs: Array<{ id: string }>;
    };

    // Assert
    for (const [n, answer] of answers.entries()) {
      expect(answer.status, routes[n]!.join(' ')).toBe(404);
      expect(answer.body).toContain(`Job ${id} not found.`);
    }
    expect(bobsList.jobs.map((j) => j.id)).not.toContain(id);
    expect(alicesList.jobs.map((j) => j.id)).toContain(id);
    expect((await waitForJob(id, 60_000)).status).toBe('succeeded');
  });

  it('refuses a Last-Event-ID too big for a cursor before the stream starts', async () => {
    const id = await createJob({ model: MODEL, prompts: ['a'] });
    for (const lastEventId of [`${'9'.repeat(400)}.000000001`, 'garbage', '1.2']) {
      const res = await fetch(`${stack().ingestUrl}/jobs/${id}/events`, {
        headers: { 'last-event-id': lastEventId },
      });
      expect(res.status, lastEventId).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/Last-Event-ID/);
    }
  });
});

/** One POST over `agent`, the body ended only if `end`; resolves with the answer and whether the
 * request went over a connection (so an instance) that an earlier request used. */
function rawPost(
  agent: Agent,
  headers: Record<string, string>,
  body: Buffer,
  end: boolean,
): Promise<{ status: number; text: string; reused: boolean }> {
  return new Promise((ok, fail) => {
    const req: ClientRequest = httpRequest(
      new URL('/jobs', stack().ingestUrl),
      { method: 'POST', headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          ok({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString(),
            reused: req.reusedSocket,
          }),
        );
        res.on('error', fail);
      },
    );
    req.on('error', () => {}); // a refused body's connection is closed once the answer is sent
    req.write(body);
    if (end) req.end();
  });
}

describe('bodies bounded before they are read (32 MiB, on the wire and inflated)', () => {
  const MiB = 1024 * 1024;
  const tooLarge = (status: number, text: string) => {
    expect(status).toBe(413);
    const parsed = JSON.parse(text) as { error: { code: number; status: string; message: string } };
    expect(parsed.error).toEqual({
      code: 413,
      status: 'INVALID_ARGUMENT',
      message: `The body is larger than ${32 * MiB} bytes; send a JSONL file to the bucket instead.`,
    });
  };

  it('refuses a 1 MB gzip body that inflates to 1 GiB, and the same instance keeps serving', async () => {
    // Arrange: 1,024 gzip members of 1 MiB of zeros each (~1 MB on the wire, 1 GiB inflated), and
    // one connection for both requests, so both reach the same instance.
    const member = gzipSync(Buffer.alloc(MiB));
    const bomb = Buffer.concat(Array.from({ length: 1024 }, () => member));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const gzipJson = { ...json, 'content-encoding': 'gzip' };

    // Act
    const refused = await rawPost(agent, gzipJson, bomb, true);
    const after = await rawPost(
      agent,
      json,
      Buffer.from(JSON.stringify({ model: MODEL, prompts: ['a'] })),
      true,
    );
    agent.destroy();

    // Assert
    expect(bomb.length).toBeLessThan(1.1 * MiB);
    tooLarge(refused.status, refused.text);
    expect(after).toMatchObject({ status: 202, reused: true });
  });

  it('refuses a declared Content-Length over the cap before the body is sent', async () => {
    // The body is never finished: only an instance that did not wait for it can answer.
    const agent = new Agent({ keepAlive: false });
    const answer = await rawPost(
      agent,
      { ...json, 'content-length': String(64 * MiB) },
      Buffer.from('{"p'),
      false,
    );
    agent.destroy();

    tooLarge(answer.status, answer.text);
  });
});
