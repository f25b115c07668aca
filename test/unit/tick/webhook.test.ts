import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../functions/platform/logger.js';
import { batchCycle } from '../../../functions/tick/batch-api/cycle.js';
import { batchNameOf, handleGeminiWebhook } from '../../../functions/tick/webhook.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { batchWorld } from './batch-api/batch-world.js';

// Gemini's batch webhooks (issue 23): a verified event moves its batch on at once, under the
// tick's lease; anything unverified moves nothing.

const SECRET = `whsec_${Buffer.from('a test secret of thirty-two bytes!').toString('base64')}`;
const OTHER_SECRET = `whsec_${Buffer.from('another secret, not the receiver one').toString('base64')}`;

/** A delivery as Gemini sends it: the Standard Webhooks headers over `body`, signed with `key`. */
function delivery(body: unknown, options: { key?: string; atSeconds?: number; id?: string } = {}) {
  const rawBody = typeof body === 'string' ? body : JSON.stringify(body);
  const at = options.atSeconds ?? Math.floor(Date.now() / 1000);
  const id = options.id ?? 'msg_1';
  const signature = new Webhook(options.key ?? SECRET).sign(id, new Date(at * 1000), rawBody);
  return {
    headers: { 'webhook-id': id, 'webhook-timestamp': String(at), 'webhook-signature': signature },
    rawBody: Buffer.from(rawBody),
  };
}

function event(batchName: string, type = 'batch.succeeded') {
  return { type, version: 'v1', timestamp: new Date().toISOString(), data: { id: batchName } };
}

/** A batch job submitted over the fakes, its batch ended upstream (every item answered), no tick since. */
async function endedBatch() {
  const w = await batchWorld({ items: 3 });
  const name = await w.submitted();
  w.api.end(name, 'SUCCEEDED', w.itemIds);
  const capture = createLogCapture();
  const logger = createLogger({ destination: capture.stream });
  const deps = { secret: SECRET, batchApi: { ...w.deps, logger }, logger };
  return { w, name, deps, capture };
}

describe('a verified batch event', () => {
  it('collects the batch it names at once, without a tick', async () => {
    // Arrange
    const { w, name, deps } = await endedBatch();

    // Act
    const answer = await handleGeminiWebhook(delivery(event(name)), deps);

    // Assert
    expect(answer).toEqual({ status: 200, body: { received: true, batch: name, outcome: 'collected' } });
    expect(w.run().state).toBe('collected');
    expect([0, 1, 2].map((i) => w.item(i).state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect((await w.lifecycle.getJob(w.jobId))?.status).toBe('succeeded');
  });

  it('takes the bare batch id Gemini may send as well as the resource name', async () => {
    const { w, name, deps } = await endedBatch();

    const answer = await handleGeminiWebhook(delivery(event(name.replace(/^batches\//, ''))), deps);

    expect(answer.status).toBe(200);
    expect(w.run().state).toBe('collected');
  });

  it('is harmless when delivered twice: the second finds the run collected', async () => {
    const { w, name, deps } = await endedBatch();
    await handleGeminiWebhook(delivery(event(name)), deps);
    const downloads = w.api.downloads;

    const again = await handleGeminiWebhook(delivery(event(name)), deps);

    expect(again).toEqual({ status: 200, body: { received: true, batch: name, state: 'collected' } });
    expect(w.api.downloads).toBe(downloads);
    expect((await w.lifecycle.view(w.jobId))?.counts).toMatchObject({ total: 3, succeeded: 3, pending: 0 });
  });

  it('leaves a run another tick holds alone (the lease), and that tick collects it', async () => {
    const { w, name, deps } = await endedBatch();
    const run = w.run();
    await w.deps.runs.update(run, { leaseUntilMs: w.now() + 60_000 });

    const answer = await handleGeminiWebhook(delivery(event(name)), deps);

    expect(answer).toEqual({ status: 200, body: { received: true, batch: name, outcome: null } });
    expect(w.run().state).toBe('running');
    expect(w.api.downloads).toBe(0);
  });

  it('answers 200 and moves nothing for a batch no run follows, or another event', async () => {
    const { w, deps, capture } = await endedBatch();

    const unknown = await handleGeminiWebhook(delivery(event('batches/nobodys')), deps);
    const video = await handleGeminiWebhook(delivery(event('batches/x', 'video.generated')), deps);

    expect(unknown).toEqual({ status: 200, body: { received: true, ignored: 'no run follows this batch' } });
    expect(video).toEqual({ status: 200, body: { received: true, ignored: 'not a batch event' } });
    expect(w.run().state).toBe('running');
    expect(capture.lines().filter((l) => l.event === 'webhook.ignored')).toHaveLength(2);
  });

  it('reads the state from the Batch API, not from the event: a batch still running waits', async () => {
    const w = await batchWorld({ items: 2 });
    const name = await w.submitted();
    const logger = createLogger({ level: 'silent' });

    const answer = await handleGeminiWebhook(delivery(event(name)), {
      secret: SECRET,
      batchApi: { ...w.deps, logger },
      logger,
    });

    expect(answer.status).toBe(200);
    expect(w.run().state).toBe('running');
  });
});

describe('an unverified delivery', () => {
  const forgeries: Array<[string, (name: string) => ReturnType<typeof delivery>]> = [
    ['signed with another key', (name) => delivery(event(name), { key: OTHER_SECRET })],
    [
      'signed 10 minutes ago (a replay)',
      (name) => delivery(event(name), { atSeconds: Math.floor(Date.now() / 1000) - 600 }),
    ],
    [
      'whose body was changed after signing',
      (name) => {
        const signed = delivery(event('batches/elsewhere'));
        return { ...signed, rawBody: Buffer.from(JSON.stringify(event(name))) };
      },
    ],
    [
      'without a signature',
      (name) => {
        const { headers, rawBody } = delivery(event(name));
        return { headers: { ...headers, 'webhook-signature': '' }, rawBody };
      },
    ],
  ];

  it.each(forgeries)('is refused with 401 and moves nothing when %s', async (_what, forge) => {
    // Arrange
    const { w, name, deps } = await endedBatch();

    // Act
    const answer = await handleGeminiWebhook(forge(name), deps);

    // Assert
    expect(answer.status).toBe(401);
    expect(answer.body).toMatchObject({ error: { code: 401, status: 'UNAUTHENTICATED' } });
    expect(w.run().state).toBe('running');
    expect(w.api.downloads).toBe(0);
    // The tick, polling, still collects it.
    await batchCycle(w.deps);
    expect(w.run().state).toBe('collected');
  });

  it('is 404 where no secret is configured', async () => {
    const { w, name, deps } = await endedBatch();

    const answer = await handleGeminiWebhook(delivery(event(name)), { ...deps, secret: undefined });

    expect(answer.status).toBe(404);
    expect(w.run().state).toBe('running');
  });
});

describe('batchNameOf', () => {
  it('names the batch from a bare id or a resource name, and nothing else', () => {
    expect(batchNameOf('abc123')).toBe('batches/abc123');
    expect(batchNameOf('batches/abc123')).toBe('batches/abc123');
    expect(batchNameOf('batches/../files/x')).toBeUndefined();
    expect(batchNameOf('')).toBeUndefined();
    expect(batchNameOf(undefined)).toBeUndefined();
  });
});
