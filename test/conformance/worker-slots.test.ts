import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/local/ports.js';
import { startFunctionsHost } from '../../infra/local/stack.js';

/**
 * The functions host serves the worker as Cloud Run does at its limit (infra/local/worker-slots.ts):
 * at most max instances × concurrency requests at once; one more waits for a slot up to the pending
 * window, then is refused with 429 (cloud.google.com/run/docs/about-instance-autoscaling, "Exceeding
 * maximum instances"). A host of its own with one instance serving one request at once, and a
 * window of 1.5 s; a request holds its slot until it is answered, so one whose body has not all
 * arrived holds it as long as the test likes.
 */
const PENDING_MS = 1500;
let host: Awaited<ReturnType<typeof startFunctionsHost>>;
let url: URL;

beforeAll(async () => {
  host = await startFunctionsHost(
    { worker: await freePort() },
    {
      ...process.env,
      FANOUT_INSTANCES: '1',
      FANOUT_WORKER_CONCURRENCY: '1',
      FANOUT_WORKER_PENDING_MS: String(PENDING_MS),
    },
  );
  url = new URL(host.urls.worker!);
}, 60_000);

afterAll(async () => {
  await host?.stop();
});

/** A POST whose body stops halfway until `finish`: it holds a worker slot meanwhile. */
function holdSlot() {
  const body = JSON.stringify({ kind: 'item', jobId: 'none', itemId: '0' });
  let finish: () => unknown = () => undefined;
  const answered = new Promise<number>((ok, fail) => {
    const req = request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    req.on('response', (res) => {
      res.resume();
      ok(res.statusCode ?? 0);
    });
    req.on('error', fail);
    req.write(body.slice(0, 5));
    finish = () => req.end(body.slice(5));
  });
  return { answered, finish: () => finish() };
}

const post = () =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'item', jobId: 'none', itemId: '0' }),
  });

describe('the local worker at max instances × concurrency', () => {
  it('holds a request beyond its slots for the pending window, then answers 429; a freed slot serves the next', async () => {
    const holder = holdSlot();
    // The holder's headers reach the host first (it takes the one slot as they arrive).
    await new Promise((r) => setTimeout(r, 300));

    const started = Date.now();
    const refused = await post();
    const waitedMs = Date.now() - started;

    expect(refused.status).toBe(429);
    expect(waitedMs).toBeGreaterThanOrEqual(PENDING_MS - 100);

    holder.finish();
    expect(await holder.answered).not.toBe(429);
    const next = await post();
    expect(next.status).not.toBe(429);
  });
});
