import { generateKeyPairSync } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { signJwt } from '../../infra/local/id-issuer.js';
import { createJob, idToken, stack, waitForJob } from '../helpers/e2e.js';

// The tenant section of the hostile catalogue, part one: identity and the front door, through the
// local cloud with two owners. The local cloud is an issuer of its own (RS256 keys of this run) and
// its front verifies tokens as Cloud Run's does; ingest verifies them again with the code that
// verifies Google's. Every refusal is `{error:{code, status, message}}`, and nothing of bob's shows.

const MODEL = 'gemini-2.5-flash';
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
/** The local developer is an admin (FANOUT_ADMINS): the name an impostor would pick. */
const ADMIN = 'developer@localhost';
const BOB_SECRET = 'bob-secret-prompt';
const json = { 'content-type': 'application/json' };
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

async function ingest(
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  const res = await fetch(`${stack().ingestUrl}${path}`, init);
  return { status: res.status, headers: res.headers, text: await res.text() } satisfies Answer;
}

const bearer = (token: string) => `Bearer ${token}`;

/** The API's error, with nothing of bob's in it. */
function expectError(answer: Answer, code: number, says?: RegExp): void {
  expect(answer.status, answer.text).toBe(code);
  const body = JSON.parse(answer.text) as { error: { code: number; status: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.status).toBe('string');
  if (says) expect(body.error.message).toMatch(says);
  expect(answer.text).not.toContain(BOB_SECRET);
  expect(answer.text).not.toContain(BOB);
  expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
}

/** The claims of a real token, for forging. */
async function claimsOf(email: string): Promise<Record<string, unknown>> {
  const token = await idToken(email);
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
}

/** Tokens that name someone and must be refused, each for its own reason. */
async function badTokens(email: string): Promise<Array<[string, string]>> {
  const certs = (await (await fetch(`${stack().idIssuerUrl}/oauth2/v1/certs`)).json()) as Record<
    string,
    string
  >;
  const kid = Object.keys(certs)[0]!;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const claims = await claimsOf(email);
  return [
    ['forged (another key under the real kid)', signJwt(claims, { kid, privateKey })],
    ['unsigned (alg none)', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`],
    ['expired', await idToken(email, { exp: now() - 3600 })],
    ['for another audience', await idToken(email, { audience: 'https://elsewhere.example.com' })],
    ['from another issuer', await idToken(email, { iss: 'https://accounts.evil.example' })],
  ];
}

let alice: string;
let bob: string;
let bobsJob: string;
let bobsPageToken: string;
let bobsListToken: string;

beforeAll(async () => {
  alice = await idToken(ALICE);
  bob = await idToken(BOB);
  const created = await ingest('/jobs', {
    method: 'POST',
    headers: { ...json, authorization: bearer(bob), 'idempotency-key': 'bobs-key' },
    body: JSON.stringify({ model: MODEL, prompts: [BOB_SECRET, `${BOB_SECRET} 2`, `${BOB_SECRET} 3`] }),
  });
  expect(created.status).toBe(202);
  bobsJob = (JSON.parse(created.text) as { id: string }).id;
  await ingest('/jobs', {
    method: 'POST',
    headers: { ...json, authorization: bearer(bob) },
    body: JSON.stringify({ model: MODEL, prompts: ['bob again'] }),
  });
  const page = await ingest(`/jobs/${bobsJob}/results?pageSize=1`, {
    headers: { authorization: bearer(bob) },
  });
  bobsPageToken = (JSON.parse(page.text) as { nextPageToken: string }).nextPageToken;
  const list = await ingest('/jobs?pageSize=1', { headers: { authorization: bearer(bob) } });
  bobsListToken = (JSON.parse(list.text) as { nextPageToken: string }).nextPageToken;
  expect(bobsPageToken && bobsListToken).toBeTruthy();
});

describe('tokens that do not verify', () => {
  it('refuses each bad token with 401 JSON, in Authorization or X-Serverless-Authorization', async () => {
    for (const [, token] of await badTokens(ADMIN)) {
      const alone = await ingest('/jobs', { headers: { authorization: bearer(token) } });
      // A bad X-Serverless-Authorization is refused even beside a valid Authorization: no fallback.
      const besideValid = await ingest('/jobs', {
        headers: { 'x-serverless-authorization': bearer(token), authorization: bearer(bob) },
      });

      expectError(alone, 401, /ID token/);
      expectError(besideValid, 401, /ID token/);
    }
  });

  it('acts as the X-Serverless-Authorization identity, never as a forged or other Authorization', async () => {
    // Arrange: alice verified by the front; Authorization names the admin (forged) or bob (valid).
    const forgedAdmin = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(await claimsOf(ADMIN))}.`;
    const alicesJobs = new Set<string>();
    for (const authorization of [bearer(forgedAdmin), bearer(bob), bearer(await idToken(ADMIN))]) {
      const asAlice = { 'x-serverless-authorization': bearer(alice), authorization };

      // Act
      const everyJob = await ingest('/jobs?all=true', { headers: asAlice });
      const bobs = await ingest(`/jobs/${bobsJob}`, { headers: asAlice });
      const replay = await ingest('/jobs', {
        method: 'POST',
        headers: { ...json, ...asAlice, 'idempotency-key': 'bobs-key' },
        body: JSON.stringify({ model: MODEL, prompts: [BOB_SECRET, `${BOB_SECRET} 2`, `${BOB_SECRET} 3`] }),
      });

      // Assert: alice, not an admin, not bob; bob's key is not hers, so it made a job of hers (202 the
      // first time, then her own replayed: 200).
      expectError(everyJob, 403, /admins/);
      expectError(bobs, 404, /not found/);
      expect(replay.status).toBe(alicesJobs.size === 0 ? 202 : 200);
      const mine = (JSON.parse(replay.text) as { id: string }).id;
      alicesJobs.add(mine);
      expect(mine).not.toBe(bobsJob);
      const alicesList = await ingest('/jobs?pageSize=100', { headers: { authorization: bearer(alice) } });
      expect(alicesList.text).toContain(mine);
      const bobsList = await ingest('/jobs?pageSize=100', { headers: { authorization: bearer(bob) } });
      expect(bobsList.text).not.toContain(mine);
    }
    expect(alicesJobs.size).toBe(1);
  });
});

describe("alice probing bob's job", () => {
  it('gets 404 on every route, as for a job that does not exist, and nothing of his', async () => {
    const asAlice = { authorization: bearer(alice) };
    const answers = await Promise.all([
      ingest(`/jobs/${bobsJob}`, { headers: asAlice }),
      ingest(`/jobs/${bobsJob}/results`, { headers: asAlice }),
      ingest(`/jobs/${bobsJob}/results?pageToken=${bobsPageToken}`, { headers: asAlice }),
      ingest(`/jobs/${bobsJob}/results?format=jsonl`, { headers: asAlice }),
      ingest(`/jobs/${bobsJob}/events`, { headers: { ...asAlice, accept: 'text/event-stream' } }),
      ingest(`/jobs/${bobsJob}/cancel`, { method: 'POST', headers: { ...asAlice, ...json }, body: '{}' }),
      ingest(`/jobs/${bobsJob}`, { headers: { ...asAlice, accept: 'text/html' } }),
    ]);

    for (const answer of answers) expectError(answer, 404, new RegExp(`Job ${bobsJob} not found`));
    expect((await waitForJob(bobsJob, 60_000)).status).toBe('succeeded');
  });

  it("cannot use, replay or forge page tokens to reach bob's jobs", async () => {
    // Arrange: alice's own job, and tokens made from bob's.
    const mine = await createAlicesJob(3);
    const forgedResults = `${Buffer.from('1').toString('base64url')}.${'A'.repeat(22)}`;
    const forgedList = Buffer.from(bobsJob).toString('base64url');
    const asAlice = { authorization: bearer(alice) };

    // Act
    const answers = await Promise.all([
      ingest(`/jobs/${mine}/results?pageToken=${bobsPageToken}`, { headers: asAlice }),
      ingest(`/jobs/${mine}/results?pageToken=${forgedResults}`, { headers: asAlice }),
      ingest(`/jobs?pageToken=${bobsListToken}`, { headers: asAlice }),
      ingest(`/jobs?pageToken=${forgedList}`, { headers: asAlice }),
      ingest(`/jobs?pageToken=${forgedList}.${'A'.repeat(22)}`, { headers: asAlice }),
    ]);

    // Assert: the same answer whether bob's job exists or not.
    for (const answer of answers) expectError(answer, 400, /pageToken is not valid/);
  });
});

/** A job of alice's with `n` prompts, finished. */
async function createAlicesJob(n: number): Promise<string> {
  const res = await ingest('/jobs', {
    method: 'POST',
    headers: { ...json, authorization: bearer(alice) },
    body: JSON.stringify({ model: MODEL, prompts: Array.from({ length: n }, (_, i) => `alice ${i}`) }),
  });
  const { id } = JSON.parse(res.text) as { id: string };
  await waitForJob(id, 60_000);
  return id;
}

describe('the front door', () => {
  it('takes writes only as JSON (415) and, from a browser, only from its own origin (403)', async () => {
    const id = await createJob({ model: MODEL, prompts: ['door'] });
    const origin = new URL(stack().ingestUrl).origin;

    const cancelAsText = await ingest(`/jobs/${id}/cancel`, { method: 'POST' });
    const cancelAsForm = await ingest(`/jobs/${id}/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'x=1',
    });
    const fromElsewhere = await ingest('/jobs', {
      method: 'POST',
      headers: { ...json, origin: 'https://evil.example' },
      body: JSON.stringify({ model: MODEL, prompts: ['a'] }),
    });
    const cancelFromElsewhere = await ingest(`/jobs/${id}/cancel`, {
      method: 'POST',
      headers: { ...json, origin: 'null' },
      body: '{}',
    });
    const fromHere = await ingest('/jobs', {
      method: 'POST',
      headers: { ...json, origin },
      body: JSON.stringify({ model: MODEL, prompts: ['a'] }),
    });

    expectError(cancelAsText, 415, /application\/json/);
    expectError(cancelAsForm, 415, /application\/json/);
    expectError(fromElsewhere, 403, /evil\.example/);
    expectError(cancelFromElsewhere, 403, /may not change jobs/);
    expect(fromHere.status).toBe(202);
  });

  it('answers only to its own loopback names in Host (no DNS rebinding), on every port', async () => {
    const urls = [stack().ingestUrl, stack().tickUrl, stack().workerUrl, stack().idIssuerUrl];
    for (const url of urls) {
      const { port } = new URL(url);
      for (const host of [
        'evil.example',
        `evil.example:${port}`,
        '127.0.0.1:1',
        `127.0.0.1.nip.io:${port}`,
      ]) {
        const answer = await rawGet(url, '/jobs', { host });
        expect(answer.status, `${url} Host: ${host}`).toBe(403);
        expect(JSON.parse(answer.text).error.status).toBe('PERMISSION_DENIED');
        expect(answer.nosniff).toBe('nosniff');
      }
    }
    expect(
      (await rawGet(stack().ingestUrl, '/jobs', { host: `localhost:${new URL(stack().ingestUrl).port}` }))
        .status,
    ).toBe(200);
  });

  it('marks every kind of answer nosniff: JSON, JSONL, SSE, HTML, and errors from any layer', async () => {
    const id = await createJob({ model: MODEL, prompts: ['sniff'] });
    await waitForJob(id, 60_000);
    const answers = await Promise.all([
      ingest('/jobs'),
      ingest(`/jobs/${id}/results?format=jsonl`),
      ingest(`/jobs/${id}/events`, { headers: { accept: 'text/event-stream' } }),
      ingest(`/jobs/${id}`, { headers: { accept: 'text/html' } }),
      ingest('/nope'),
      ingest('/jobs', { method: 'POST', headers: json, body: '{"prompts": [' }),
      ingest('/jobs', { headers: { authorization: 'Bearer junk' } }),
    ]);

    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 404, 400, 401]);
    for (const answer of answers) expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('caps the streams one caller holds open on an instance (429 JSON), others unaffected', async () => {
    // Arrange: carol's job stays running (its one item times out at Gemini and is retried).
    const carol = { authorization: bearer(await idToken('carol@example.com')) };
    const created = await ingest('/jobs', {
      method: 'POST',
      headers: { ...json, ...carol },
      body: JSON.stringify({ model: MODEL, prompts: ['[[fault:timeout]] hold'] }),
    });
    const { id } = JSON.parse(created.text) as { id: string };
    const stop = new AbortController();

    try {
      // Act: more streams than the local cloud's instances (2) have slots for her (10 each).
      const streams = await Promise.all(
        Array.from({ length: 21 }, () =>
          fetch(`${stack().ingestUrl}/jobs/${id}/events`, {
            headers: { ...carol, accept: 'text/event-stream' },
            signal: stop.signal,
          }),
        ),
      );
      const refused = streams.filter((r) => r.status === 429);
      const dave = await ingest('/jobs', {
        headers: { authorization: bearer(await idToken('dave@example.com')) },
      });

      // Assert
      expect(streams.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(10);
      expect(refused.length).toBeGreaterThanOrEqual(1);
      const body = (await refused[0]!.json()) as { error: { code: number; status: string; message: string } };
      expect(body.error).toMatchObject({ code: 429, status: 'RESOURCE_EXHAUSTED' });
      expect(refused[0]!.headers.get('retry-after')).toBeTruthy();
      expect(dave.status).toBe(200);
    } finally {
      stop.abort();
      await ingest(`/jobs/${id}/cancel`, { method: 'POST', headers: { ...json, ...carol }, body: '{}' });
    }
  });
});

describe('tick and the identity provider', () => {
  it("tick takes only Cloud Scheduler's token for its own URL", async () => {
    const scheduler = stack().schedulerServiceAccount;
    const tick = (authorization?: string) =>
      fetch(stack().tickUrl, {
        method: 'POST',
        headers: { ...json, ...(authorization ? { authorization } : {}) },
        body: '{}',
      }).then(async (r) => ({ status: r.status, text: await r.text() }));

    const answers = await Promise.all([
      tick(),
      tick(bearer(await idToken(ALICE, { audience: stack().tickUrl }))),
      tick(bearer(await idToken(scheduler))), // the scheduler's token for ingest, not tick
      tick(bearer(await idToken(scheduler, { audience: stack().tickUrl, exp: now() - 3600 }))),
    ]);
    const good = await tick(bearer(await idToken(scheduler, { audience: stack().tickUrl })));

    for (const answer of answers) {
      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.text).error.status).toBe('UNAUTHENTICATED');
    }
    expect(good.status).not.toBe(401);
  });

  it('signs tokens only for a request a web page could not make', async () => {
    const url = `${stack().idIssuerUrl}/token?email=${encodeURIComponent(ADMIN)}&audience=${encodeURIComponent(stack().ingestUrl)}`;

    const noHeader = await fetch(url);

    expect(noHeader.status).toBe(403);
  });
});

/** A GET with headers fetch will not send (`Host`), through node:http. */
function rawGet(
  base: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; text: string; nosniff: string | undefined }> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          text: Buffer.concat(chunks).toString(),
          nosniff: res.headers['x-content-type-options'] as string | undefined,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}
