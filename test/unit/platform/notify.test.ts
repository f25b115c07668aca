import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { type AddressInfo, BlockList } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyCallback, verifyWebhook } from '../../../functions/api/webhooks.js';
import { CallbackError, type CallbackOptions, postCallback } from '../../../functions/platform/notify.js';
import { callbackKeyFor } from '../../../functions/platform/notify-signature.js';
import { jobViewFixture } from '../../fixtures/job-view.js';
import { tableLookup } from '../../helpers/dns.js';
import { rejectionOf } from '../../helpers/rejection.js';
import { selfSignedCert } from '../../helpers/tls.js';

const SECRET = 'a-test-callback-secret-of-at-least-32-characters';
const KEY = callbackKeyFor(SECRET, 'alice@example.com');
const JOB = jobViewFixture({
  id: 'job-1',
  status: 'succeeded',
  counts: { total: 1, succeeded: 1, failed: 0, cancelled: 0, pending: 0 },
  createdAt: '2026-01-02T03:04:00.000Z',
  finishedAt: '2026-01-02T03:04:05.000Z',
});
const MESSAGE = { id: 'job_job-1', type: 'job.succeeded', timestamp: '2026-01-02T03:04:05.000Z', data: JOB };

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server;
let port: number;
let ca: Buffer;
let received: Received[];
let answer: (req: Received, res: ServerResponse) => void;

beforeAll(async () => {
  // A receiver with a certificate made for this run, for the name the fake resolver answers and for
  // 127.0.0.1 (so a literal-IP callback would succeed if the address guard let it through).
  const made = selfSignedCert(['DNS:hooks.example.test', 'DNS:internal.example.test', 'IP:127.0.0.1']);
  ca = made.cert;
  server = createServer({ key: made.key, cert: ca }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen = {
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(seen);
      answer(seen, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  received = [];
  answer = (_req, res) => res.writeHead(204).end();
});

/** The receiver counts as public here: hooks.example.test resolves to it and loopback is not denied. */
const toReceiver = (overrides: Partial<CallbackOptions> = {}): CallbackOptions => ({
  key: KEY,
  ca,
  resolve: tableLookup({ 'hooks.example.test': ['127.0.0.1'] }),
  denied: new BlockList(),
  backoffMs: 5,
  ...overrides,
});

/** The production guard: media's deny list, names resolved by the fake resolver. */
const guarded = (table: Record<string, string[]> = {}): CallbackOptions => ({
  key: KEY,
  ca,
  resolve: tableLookup(table),
  backoffMs: 5,
});

const hook = (path = '/hook') => `https://hooks.example.test:${port}${path}`;

const failureOf = (promise: Promise<unknown>) => rejectionOf(promise, CallbackError);

describe('postCallback', () => {
  it('POSTs the Standard Webhooks payload, its destination included, signed with the given key', async () => {
    await postCallback(hook(), MESSAGE, toReceiver());

    expect(received).toHaveLength(1);
    const [req] = received;
    expect(req!.path).toBe('/hook');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.headers['webhook-id']).toBe('job_job-1');
    expect(req!.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(JSON.parse(req!.body)).toEqual({
      type: 'job.succeeded',
      timestamp: MESSAGE.timestamp,
      destination: hook(),
      data: JOB,
    });
    expect(verifyWebhook(req!.headers, req!.body, KEY).id).toBe('job_job-1');
    expect(() => verifyWebhook(req!.headers, req!.body, callbackKeyFor(SECRET, 'bob@example.com'))).toThrow(
      /no signature matches/,
    );
  });

  it('refuses http', async () => {
    const err = await failureOf(
      postCallback(`http://hooks.example.test:${port}/hook`, MESSAGE, toReceiver()),
    );

    expect(err.message).toMatch(/not https/);
    expect(err.retryable).toBe(false);
    expect(received).toHaveLength(0);
  });

  it('refuses a URL with credentials, without repeating them', async () => {
    const err = await failureOf(
      postCallback(`https://user:hunter2@hooks.example.test:${port}/hook`, MESSAGE, toReceiver()),
    );

    expect(err.message).toMatch(/credentials/);
    expect(err.message).not.toContain('hunter2');
    expect(received).toHaveLength(0);
  });

  it.each([
    '127.0.0.1',
    '[::1]',
    '[::ffff:127.0.0.1]',
    '2130706433', // 127.0.0.1 as one number: the URL parser normalises it
    '10.0.0.7',
    '192.168.1.1',
    '169.254.169.254',
  ])('refuses the literal address %s', async (host) => {
    const err = await failureOf(postCallback(`https://${host}:${port}/hook`, MESSAGE, guarded()));

    expect(err.message).toMatch(/not a public address/);
    expect(err.retryable).toBe(false);
    expect(received).toHaveLength(0);
  });

  it.each([
    ['loopback', 'internal.example.test', ['127.0.0.1']],
    ['a private range', 'internal.example.test', ['10.1.2.3']],
    ['the metadata server', 'metadata.google.internal', ['169.254.169.254']],
    ['one private address among public ones', 'internal.example.test', ['8.8.8.8', '127.0.0.1']],
  ])(
    'refuses a name that resolves to %s, naming neither host nor address',
    async (_what, host, addresses) => {
      const err = await failureOf(
        postCallback(`https://${host}:${port}/hook`, MESSAGE, guarded({ [host]: addresses as string[] })),
      );

      expect(err.message).toMatch(/does not resolve to public addresses/);
      expect(err.retryable).toBe(false);
      expect(err.message).not.toContain(host);
      for (const address of addresses as string[]) expect(err.message).not.toContain(address);
      expect(received).toHaveLength(0);
    },
  );

  it('does not follow a redirect: a 3xx is a failure', async () => {
    answer = (req, res) =>
      req.path === '/hook'
        ? res.writeHead(302, { location: hook('/elsewhere') }).end()
        : res.writeHead(204).end();

    const err = await failureOf(postCallback(hook(), MESSAGE, toReceiver()));

    expect(err.statusCode).toBe(302);
    expect(err.retryable).toBe(false);
    expect(received.map((r) => r.path)).toEqual(['/hook']);
  });

  it.each([503, 429])(
    'retries a %i, each attempt signed, with one webhook-id, until it is accepted',
    async (status) => {
      answer = (_req, res) => res.writeHead(received.length < 3 ? status : 200).end();

      await postCallback(hook(), MESSAGE, toReceiver());

      expect(received).toHaveLength(3);
      for (const req of received) expect(verifyWebhook(req.headers, req.body, KEY).id).toBe('job_job-1');
    },
  );

  it('gives up after its attempts, saying how many', async () => {
    answer = (_req, res) => res.writeHead(500).end();

    const err = await failureOf(postCallback(hook(), MESSAGE, toReceiver({ attempts: 3 })));

    expect(err.message).toBe('the callback answered 500 (attempt 3 of 3)');
    expect(err.retryable).toBe(true);
    expect(received).toHaveLength(3);
  });

  it.each([400, 404, 410])('does not retry a %i', async (status) => {
    answer = (_req, res) => res.writeHead(status).end();

    const err = await failureOf(postCallback(hook(), MESSAGE, toReceiver()));

    expect(err.statusCode).toBe(status);
    expect(received).toHaveLength(1);
  });

  it('times an attempt out, retries it, and stays within its total bound', async () => {
    answer = () => undefined; // never answers
    const started = Date.now();

    const err = await failureOf(
      postCallback(hook(), MESSAGE, toReceiver({ attempts: 10, attemptTimeoutMs: 150, totalTimeoutMs: 600 })),
    );

    expect(err.message).toMatch(/did not answer within \d+ ms/);
    expect(received.length).toBeGreaterThanOrEqual(2);
    expect(received.length).toBeLessThan(10);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('retries a network error and reports only its code', async () => {
    const err = await failureOf(
      postCallback(`https://hooks.example.test:1/hook`, MESSAGE, toReceiver({ attempts: 2 })),
    );

    expect(err.message).toBe('the callback could not be reached (ECONNREFUSED) (attempt 2 of 2)');
    expect(err.retryable).toBe(true);
  });

  it('refuses a certificate it does not trust, naming no address', async () => {
    const err = await failureOf(postCallback(hook(), MESSAGE, toReceiver({ ca: undefined })));

    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/could not be reached \([A-Z_]+\)/);
    expect(err.message).not.toContain('127.0.0.1');
    expect(received).toHaveLength(0);
  });

  it('sends nothing without a key', async () => {
    const err = await failureOf(postCallback(hook(), MESSAGE, toReceiver({ key: undefined })));

    expect(err.message).toMatch(/CALLBACK_SECRET/);
    expect(received).toHaveLength(0);
  });
});

describe('postCallback in the local cloud', () => {
  it('takes an http receiver on loopback, signed all the same', async () => {
    const bodies: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
    const plain = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push({
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/done`;

      await postCallback(url, MESSAGE, { ...guarded(), local: true });

      expect(bodies).toHaveLength(1);
      expect(verifyCallback(bodies[0]!.headers, bodies[0]!.body, KEY, { url }).data).toEqual(JOB);
    } finally {
      await new Promise((resolve) => plain.close(resolve));
    }
  });

  it('takes a name that resolves to loopback', async () => {
    await postCallback(hook(), MESSAGE, { ...guarded({ 'hooks.example.test': ['127.0.0.1'] }), local: true });

    expect(received).toHaveLength(1);
  });

  it.each([
    ['the literal', '10.0.0.7', {}],
    ['the literal', '169.254.169.254', {}],
    ['a name for', 'internal.example.test', { 'internal.example.test': ['10.1.2.3'] }],
    ['a name for', 'metadata.google.internal', { 'metadata.google.internal': ['169.254.169.254'] }],
  ])('still refuses %s %s', async (_what, host, table) => {
    const err = await failureOf(
      postCallback(`https://${host}:${port}/hook`, MESSAGE, { ...guarded(table), local: true }),
    );

    expect(err.message).toMatch(/public address/);
    expect(received).toHaveLength(0);
  });
});
