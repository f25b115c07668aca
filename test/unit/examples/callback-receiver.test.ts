import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callbackReceiver } from '../../../examples/callback-receiver.js';
import type { CallbackPayload } from '../../../functions/api/webhooks.js';
import { postCallback } from '../../../functions/platform/notify.js';
import { callbackKeyFor } from '../../../functions/platform/notify-signature.js';
import { jobViewFixture } from '../../fixtures/job-view.js';

/** examples/callback-receiver.ts, fed by the real sender (notify.ts, as the local cloud sends). */
const SECRET = 'a-test-callback-master-secret-of-32-characters-or-more';
const KEY = callbackKeyFor(SECRET, 'alice@example.com');
const JOB = jobViewFixture({
  id: 'job-example',
  status: 'succeeded',
  counts: { total: 1, succeeded: 1, failed: 0, cancelled: 0, pending: 0 },
  createdAt: '2026-01-02T03:04:00.000Z',
  finishedAt: '2026-01-02T03:04:05.000Z',
});
const MESSAGE = {
  id: 'job_job-example',
  type: 'job.succeeded',
  timestamp: '2026-01-02T03:04:05.000Z',
  data: JOB,
};

let server: Server;
let url: string;
const jobs: CallbackPayload[] = [];

beforeAll(async () => {
  server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fanout`;
  const handle = callbackReceiver({ key: KEY, url, onJob: (p) => void jobs.push(p) });
  server.on('request', (req, res) => void handle(req, res));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('examples/callback-receiver.ts', () => {
  it('takes what the sender signs for it, once per webhook-id, and refuses another key or URL', async () => {
    // Act
    await postCallback(url, MESSAGE, { key: KEY, local: true });
    await postCallback(url, MESSAGE, { key: KEY, local: true });
    const otherKey = await postCallback(url, MESSAGE, {
      key: callbackKeyFor(SECRET, 'bob@example.com'),
      local: true,
    }).catch((err: Error) => err.message);
    const otherUrl = await postCallback(`${url}-elsewhere`, MESSAGE, { key: KEY, local: true }).catch(
      (err: Error) => err.message,
    );

    // Assert
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ type: 'job.succeeded', destination: url, data: { id: 'job-example' } });
    expect(otherKey).toMatch(/answered 400/);
    expect(otherUrl).toMatch(/answered 400/);
  });
});
