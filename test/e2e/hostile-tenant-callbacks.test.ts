/**
 * The tenant section of the hostile catalogue, callbacks (issue 19, item 4): two owners of the local
 * cloud, alice and bob, each with a receiver that verifies what it is sent with `verifyCallback` and
 * its owner's key, as a user's receiver would. Nothing here is faked: the jobs run through the real
 * functions, and the callbacks are the ones the lifecycle's outbox sends.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../cli/program.js';
import { createJobsClient, type JobsClient } from '../../functions/api/client.js';
import type { CreateJobRequest, JobView } from '../../functions/api/jobs.js';
import { verifyCallback, WebhookVerificationError } from '../../functions/api/webhooks.js';
import { call, idToken, stack } from '../helpers/e2e.js';

/** One POST as the receiver got it, and what `verifyCallback` made of it at that endpoint. */
interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  verdict: string;
}

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

let receiver: Server;
let base: string;
const deliveries: Delivery[] = [];
/** Each endpoint's key (its owner's), as the receiver is configured; set once the keys are fetched. */
const keys = new Map<string, string>();
/** Paths that answer 503 to their first POST, so the sender retries. */
const flakyOnce = new Set<string>();

const clientAs = async (email: string): Promise<JobsClient> =>
  createJobsClient(stack().ingestUrl, { token: await idToken(email) });

function verdictOf(path: string, headers: IncomingHttpHeaders, body: string): string {
  try {
    verifyCallback(headers, body, keys.get(path.split('/')[1]!) ?? 'whsec_AAAA', { url: `${base}${path}` });
    return 'ok';
  } catch (err) {
    if (err instanceof WebhookVerificationError) return err.message;
    throw err;
  }
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      const body = Buffer.concat(chunks).toString('utf8');
      deliveries.push({ path, headers: req.headers, body, verdict: verdictOf(path, req.headers, body) });
      if (flakyOnce.delete(path)) return void res.writeHead(503).end();
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  keys.set('alice', (await (await clientAs(ALICE)).callbackKey()).key);
  keys.set('bob', (await (await clientAs(BOB)).callbackKey()).key);
});

afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
});

/** Submits a one-prompt job as `email` and waits until its callback is delivered. */
async function jobWithCallback(email: string, path: string): Promise<JobView> {
  const client = await clientAs(email);
  const body: CreateJobRequest = { prompts: [`callback for ${email}`], callbackUrl: `${base}${path}` };
  const { id } = await client.submit(body);
  return client.waitFor(id, {
    timeoutMs: 60_000,
    intervalMs: 300,
    until: (job) => job.callback?.state === 'delivered' || job.callback?.state === 'failed',
  });
}

const at = (path: string) => deliveries.filter((d) => d.path === path);

describe('tenants: callbacks', () => {
  it('each owner fetches their own key only, never cached, the same on every call', async () => {
    // Act
    const alice = await (await clientAs(ALICE)).callbackKey();
    const again = await (await clientAs(ALICE)).callbackKey();
    const probing = await fetch(
      `${stack().ingestUrl}/callback-key?owner=${encodeURIComponent(BOB)}&for=${encodeURIComponent(BOB)}`,
      { headers: { authorization: `Bearer ${await idToken(ALICE)}` } },
    );
    const post = await call('POST', '/callback-key', {}, { authorization: `Bearer ${await idToken(ALICE)}` });

    // Assert
    expect(alice).toEqual({ key: expect.stringMatching(/^whsec_/), format: 'standard-webhooks' });
    expect(again.key).toBe(alice.key);
    expect(alice.key).not.toBe(keys.get('bob'));
    expect(probing.headers.get('cache-control')).toBe('no-store');
    expect(((await probing.json()) as { key: string }).key).toBe(alice.key);
    expect(post.status).toBe(405);
  });

  it("signs each owner's callbacks with that owner's key: alice's key verifies none of bob's", async () => {
    // Act
    const [aliceJob, bobJob] = await Promise.all([
      jobWithCallback(ALICE, '/alice/keys'),
      jobWithCallback(BOB, '/bob/keys'),
    ]);
    const [toAlice] = at('/alice/keys');
    const [toBob] = at('/bob/keys');
    const check = (d: Delivery, key: string) => {
      try {
        return verifyCallback(d.headers, d.body, key, { url: `${base}${d.path}` }).data.id;
      } catch (err) {
        return (err as Error).message;
      }
    };

    // Assert
    expect(aliceJob.callback?.state).toBe('delivered');
    expect(bobJob.callback?.state).toBe('delivered');
    expect(toAlice?.verdict).toBe('ok');
    expect(toBob?.verdict).toBe('ok');
    expect(check(toAlice!, keys.get('alice')!)).toBe(aliceJob.id);
    expect(check(toBob!, keys.get('alice')!)).toBe('no signature matches');
    expect(check(toAlice!, keys.get('bob')!)).toBe('no signature matches');
    expect(JSON.parse(toAlice!.body)).toMatchObject({
      type: 'job.succeeded',
      destination: `${base}/alice/keys`,
      data: { id: aliceJob.id, status: 'succeeded' },
    });
  }, 90_000);

  it('a callback replayed to another URL fails there, and a stale one fails everywhere', async () => {
    // Arrange
    const job = await jobWithCallback(ALICE, '/alice/original');
    const [original] = at('/alice/original');
    const replay = (path: string) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': String(original!.headers['webhook-id']),
          'webhook-timestamp': String(original!.headers['webhook-timestamp']),
          'webhook-signature': String(original!.headers['webhook-signature']),
        },
        body: original!.body,
      });

    // Act: the same bytes to alice's other endpoint, and to bob's.
    await replay('/alice/elsewhere');
    await replay('/bob/elsewhere');
    const sentAt = Number(original!.headers['webhook-timestamp']);
    const later = (seconds: number) => {
      try {
        verifyCallback(original!.headers, original!.body, keys.get('alice')!, {
          url: `${base}/alice/original`,
          nowSeconds: sentAt + seconds,
        });
        return 'ok';
      } catch (err) {
        return (err as Error).message;
      }
    };

    // Assert
    expect(job.callback?.state).toBe('delivered');
    expect(original?.verdict).toBe('ok');
    expect(at('/alice/elsewhere')[0]?.verdict).toBe('the callback was sent to another destination');
    expect(at('/bob/elsewhere')[0]?.verdict).toBe('no signature matches');
    expect(later(299)).toBe('ok');
    expect(later(301)).toBe('webhook-timestamp is more than 300 s from now');
  }, 90_000);

  it('every attempt carries the same webhook-id, each signed anew', async () => {
    // Arrange: the receiver answers the first POST 503.
    flakyOnce.add('/alice/flaky');

    // Act
    const job = await jobWithCallback(ALICE, '/alice/flaky');

    // Assert
    const attempts = at('/alice/flaky');
    expect(job.callback).toMatchObject({ state: 'delivered' });
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(new Set(attempts.map((d) => d.headers['webhook-id']))).toEqual(new Set([`job_${job.id}`]));
    expect(attempts.map((d) => d.verdict)).toEqual(attempts.map(() => 'ok'));
  }, 90_000);

  it.each([
    ['a private address', 'https://10.0.0.7/hook'],
    ['a private address in decimal', 'https://167772167/hook'],
    ['a private address in octal', 'https://012.0.0.7/hook'],
    ['the metadata server in hex', 'https://0xa9fea9fe/computeMetadata/v1/'],
    ['the metadata server', 'http://169.254.169.254/computeMetadata/v1/'],
    ['carrier-grade NAT', 'https://100.64.0.1/hook'],
    ['an IPv4-mapped private address', 'https://[::ffff:10.0.0.7]/hook'],
    ['NAT64', 'https://[64:ff9b::a9fe:a9fe]/hook'],
    ['6to4', 'https://[2002:a9fe:a9fe::1]/hook'],
    ['IPv6 link-local', 'https://[fe80::1]/hook'],
  ])('refuses a callbackUrl at %s at submit, naming the field', async (_what, callbackUrl) => {
    // Act
    const res = await call(
      'POST',
      '/jobs',
      { prompts: ['never sent'], callbackUrl },
      {
        authorization: `Bearer ${await idToken(ALICE)}`,
      },
    );

    // Assert
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({
      code: 400,
      status: 'INVALID_ARGUMENT',
      details: [{ field: 'callbackUrl', message: 'must not point at a non-public address' }],
    });
  });

  it('`gemini-fanout callback-key` prints the caller’s key, as the API gives it', async () => {
    // Arrange
    let stdout = '';
    const sink = Object.assign(new PassThrough(), { isTTY: false });
    sink.on('data', (c: Buffer) => {
      stdout += c.toString();
    });

    // Act
    const code = await run(['callback-key', '--url', stack().ingestUrl, '--json'], {
      stdout: sink as never,
      stderr: sink as never,
      env: {},
    });
    const developer = await createJobsClient(stack().ingestUrl).callbackKey();

    // Assert
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(developer);
    expect(developer.key).not.toBe(keys.get('alice'));
  });
});
