import type { LookupAddress, lookup } from 'node:dns';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateContentRequest } from '../../../../functions/core/jobs.js';
import { createLogger } from '../../../../functions/platform/logger.js';
import { createMediaFetcher, guardedLookup, MediaError } from '../../../../functions/platform/media/index.js';
import { createLogCapture } from '../../../helpers/log-capture.js';
import { rejectionOf } from '../../../helpers/rejection.js';
import { selfSignedCert } from '../../../helpers/tls.js';

/**
 * URL media against a real https server on 127.0.0.1, named `media.test`, with a certificate made
 * for the run. Only `media.test` resolves to it unguarded; every other name goes through the
 * guarded lookup, and every literal address through the fetcher's own check.
 */
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const question = (): GenerateContentRequest => ({ contents: [{ role: 'user', parts: [{ text: 'what?' }] }] });

let server: Server;
let agent: Agent;
let base: string;
const hits: string[] = [];
const closed: string[] = [];

function route(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'https://media.test');
  hits.push(url.pathname);
  res.on('close', () => closed.push(url.pathname));
  switch (url.pathname) {
    case '/cat.png':
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length }).end(PNG);
      return;
    case '/notes.txt':
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('secret notes');
      return;
    case '/blob':
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(PNG);
      return;
    case '/gone.png':
      res.writeHead(404).end();
      return;
    case '/redirect':
      res.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end();
      return;
    case '/drip': {
      // Headers at once, then one byte every 50 ms of a 100 kB body: never idle, never done.
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': 100_000 });
      const timer = setInterval(() => res.write(Buffer.alloc(1)), 50);
      res.on('close', () => clearInterval(timer));
      return;
    }
    default:
      res.writeHead(404).end();
  }
}

beforeAll(async () => {
  const { key, cert } = selfSignedCert(['DNS:media.test']);
  server = createServer({ key, cert }, route);
  agent = new Agent({ ca: cert });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://media.test:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  agent.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** `media.test` → the test server, unguarded; any other name through the guarded lookup. */
function testLookup(calls: string[] = []): typeof lookup {
  const guarded = guardedLookup(((
    host: string,
    _o: object,
    cb: (e: Error | null, a?: LookupAddress[]) => void,
  ) =>
    host === 'internal.example'
      ? cb(null, [{ address: '10.0.0.5', family: 4 }])
      : cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }))) as never);
  return ((host: string, options: { all?: boolean }, cb: (...a: unknown[]) => void) => {
    calls.push(host);
    if (host !== 'media.test') return guarded(host, options as never, cb as never);
    if (options.all) return cb(null, [{ address: '127.0.0.1', family: 4 }]);
    return cb(null, '127.0.0.1', 4);
  }) as typeof lookup;
}

const fetcherWith = (extra: Partial<Parameters<typeof createMediaFetcher>[0]> = {}) =>
  createMediaFetcher({
    storage: {} as Storage,
    gcsAllowed: [],
    lookup: testLookup(),
    agent,
    ...extra,
  });

const errorOf = (promise: Promise<unknown>) => rejectionOf(promise, MediaError);

describe('URL media: fetching', () => {
  it('sends an image the server serves as one, inline', async () => {
    const attached = await fetcherWith().attach(question(), [{ url: `${base}/cat.png` }]);

    expect(attached.contents[0]?.parts[1]).toEqual({
      inlineData: { mimeType: 'image/png', data: PNG.toString('base64') },
    });
  });

  it('refuses a declared type that differs from the served one', async () => {
    const err = await errorOf(
      fetcherWith().attach(question(), [{ url: `${base}/cat.png`, mimeType: 'text/plain' }]),
    );

    expect(err.permanent).toBe(true);
    expect(err.message).toMatch(/has type "image\/png" but was declared "text\/plain"/);
  });

  it('refuses a served type Gemini does not take, whatever was declared', async () => {
    const err = await errorOf(
      fetcherWith().attach(question(), [{ url: `${base}/blob`, mimeType: 'image/png' }]),
    );

    expect(err.message).toMatch(/"application\/octet-stream", which Gemini does not take/);
  });

  it("answers a server's 404 in the caller's terms, as permanent", async () => {
    const err = await errorOf(fetcherWith().attach(question(), [{ url: `${base}/gone.png` }]));

    expect(err.permanent).toBe(true);
    expect(err.message).toBe(`${base}/gone.png answered 404`);
  });
});

describe('URL media: addresses', () => {
  const literals = [
    'https://127.0.0.1/x.png',
    'https://2130706433/x.png',
    'https://0x7f.1/x.png',
    'https://0x7f000001/x.png',
    'https://0177.0.0.1/x.png',
    'https://127.1/x.png',
    'https://10.0.0.1/x.png',
    'https://169.254.169.254/computeMetadata/v1/',
    'https://[::1]/x.png',
    'https://[::ffff:127.0.0.1]/x.png',
    'https://[::ffff:7f00:1]/x.png',
    'https://[::127.0.0.1]/x.png',
    'https://[::ffff:0:7f00:1]/x.png',
    'https://[64:ff9b:1::a00:1]/x.png',
    'https://[2002:7f00:1::1]/x.png',
    'https://[fec0::1]/x.png',
  ];

  it.each(literals)('refuses %s by its literal address, without a lookup', async (url) => {
    const calls: string[] = [];

    const err = await errorOf(fetcherWith({ lookup: testLookup(calls) }).attach(question(), [{ url }]));

    expect(err.permanent).toBe(true);
    expect(err.message).toBe(`${url} is refused: not a public address`);
    expect(calls).toEqual([]);
  });

  it.each(['http://2130706433/x.png', 'http://example.com/x.png'])('refuses the http URL %s', async (url) => {
    const err = await errorOf(fetcherWith().attach(question(), [{ url }]));

    expect(err.permanent).toBe(true);
    expect(err.message).toMatch(/only https URLs are fetched/);
  });

  it.each([...literals, 'https://internal.example/x.png'])(
    'refuses a redirect to %s, naming only the URL that was sent',
    async (target) => {
      const sent = `${base}/redirect?to=${encodeURIComponent(target)}`;

      const err = await errorOf(fetcherWith().attach(question(), [{ url: sent }]));

      expect(err.permanent).toBe(true);
      expect(err.message).toBe(`${sent} is refused (through a redirect): not a public address`);
    },
  );

  it('refuses a redirect to plain http', async () => {
    const sent = `${base}/redirect?to=${encodeURIComponent(`${base.replace('https', 'http')}/cat.png`)}`;

    const err = await errorOf(fetcherWith().attach(question(), [{ url: sent }]));

    expect(err.message).toMatch(/refused \(through a redirect\): only https/);
  });

  it('follows a redirect to a public place', async () => {
    const sent = `${base}/redirect?to=${encodeURIComponent('/cat.png')}`;

    const attached = await fetcherWith().attach(question(), [{ url: sent }]);

    expect(attached.contents[0]?.parts[1]?.inlineData?.mimeType).toBe('image/png');
  });

  it('tells the caller "not a public address" and leaves the resolved address to the log', async () => {
    const capture = createLogCapture();
    const logger = createLogger({ destination: capture.stream });

    const err = await errorOf(
      fetcherWith().attach(question(), [{ url: 'https://internal.example/cat.png?sig=SECRET' }], { logger }),
    );

    expect(err.message).toBe('https://internal.example/cat.png?sig=SECRET is refused: not a public address');
    expect(err.message).not.toContain('10.0.0.5');
    const [line] = capture.events('media.failed');
    expect(line).toMatchObject({ media: 'https://internal.example/cat.png', permanent: true });
    expect(String(line?.detail)).toContain('10.0.0.5');
    expect(JSON.stringify(capture.lines())).not.toContain('SECRET');
  });

  it('names a host that does not resolve without the resolver message', async () => {
    const err = await errorOf(fetcherWith().attach(question(), [{ url: 'https://nowhere.example/a.png' }]));

    expect(err.permanent).toBe(false);
    expect(err.message).toBe('could not fetch https://nowhere.example/a.png: its host name did not resolve');
  });
});

describe('URL media: deadline', () => {
  it('gives up on a server that drips its body, at the deadline, and hangs up', async () => {
    const started = Date.now();

    const err = await errorOf(fetcherWith({ deadlineMs: 300 }).attach(question(), [{ url: `${base}/drip` }]));

    expect(err.permanent).toBe(false);
    expect(err.message).toBe(`${base}/drip took longer than 0.3 s to fetch; the item will be tried again`);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect.poll(() => closed.includes('/drip')).toBe(true);
  }, 10_000);

  it("bounds all the item's media together too", async () => {
    const err = await errorOf(
      fetcherWith({ deadlineMs: 5000, itemDeadlineMs: 300 }).attach(question(), [{ url: `${base}/drip` }]),
    );

    expect(err.permanent).toBe(false);
    expect(err.message).toMatch(/the item's media took longer than 0.3 s/);
  }, 10_000);
});
