import { GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyWebhook } from '../../functions/api/webhooks.js';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { type HttpSink, startHttpSink } from '../helpers/http-sink.js';

// The stand-in's batch webhooks (issue 23), as Gemini's docs describe them
// (ai.google.dev/gemini-api/docs/webhooks): a thin event per ended batch, Standard Webhooks
// signed, at least once (retried on non-2xx, duplicates on request).

const MODEL = 'gemini-2.5-flash';
const SECRET = `whsec_${Buffer.from('the stand-in webhook secret, 32 b').toString('base64')}`;

describe('Gemini stand-in: batch webhooks', () => {
  let standIn: GeminiStandIn;
  let sink: HttpSink;
  let ai: GoogleGenAI;

  beforeAll(async () => {
    sink = await startHttpSink();
    standIn = await startGeminiStandIn({ batch: { pendingMs: 20, runningMs: 50 } });
    ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: standIn.url } });
  });
  afterAll(async () => {
    await standIn.close();
    await sink.close();
  });
  beforeEach(() => {
    sink.reply(() => ({ status: 200 }));
    sink.requests.length = 0;
    standIn.configure({
      webhooks: { url: `${sink.url}/hook`, secret: SECRET, duplicates: 0, attempts: 5, retryDelayMs: 20 },
    });
  });

  async function inlineBatch(displayName = 'webhook test'): Promise<string> {
    const job = await ai.batches.create({
      model: MODEL,
      src: [{ contents: [{ role: 'user', parts: [{ text: 'hello' }] }] }],
      config: { displayName },
    });
    return job.name ?? '';
  }

  it('pushes batch.succeeded, signed, naming the batch, when a batch succeeds', async () => {
    // Act
    const name = await inlineBatch();
    const [request] = await sink.waitForRequests(1, 5000);

    // Assert
    expect(request!.path).toBe('/hook');
    expect(() => verifyWebhook(request!.headers, request!.body, SECRET)).not.toThrow();
    const event = JSON.parse(request!.body.toString());
    expect(event).toMatchObject({ type: 'batch.succeeded', version: 'v1', data: { id: name.slice(8) } });
  });

  it('pushes batch.failed with the error for a failed batch', async () => {
    await inlineBatch('[[batch:fail]]');
    const [request] = await sink.waitForRequests(1, 5000);

    const event = JSON.parse(request!.body.toString());
    expect(event).toMatchObject({ type: 'batch.failed', data: { error_code: 13 } });
  });

  it('tries a refused delivery again with the same webhook-id, each attempt signed anew', async () => {
    sink.reply((_req, i) => ({ status: i < 2 ? 503 : 200 }));

    await inlineBatch();
    const requests = await sink.waitForRequests(3, 5000);

    expect(new Set(requests.map((r) => r.headers['webhook-id'])).size).toBe(1);
    for (const r of requests) expect(() => verifyWebhook(r.headers, r.body, SECRET)).not.toThrow();
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.requests).toHaveLength(3);
  });

  it('sends duplicates of a delivered event when told to (at least once)', async () => {
    standIn.configure({ webhooks: { duplicates: 2 } });

    await inlineBatch();
    const requests = await sink.waitForRequests(3, 5000);

    expect(new Set(requests.map((r) => r.headers['webhook-id'])).size).toBe(1);
    expect(standIn.webhookDeliveries().filter((d) => d.status === 200).length).toBeGreaterThanOrEqual(3);
  });

  it('sends nothing for an event the webhook is not subscribed to, or with no URL', async () => {
    standIn.configure({ webhooks: { events: ['batch.failed'] } });
    await inlineBatch();
    standIn.configure({ webhooks: { events: ['batch.succeeded'], url: null } });
    await inlineBatch();

    await new Promise((r) => setTimeout(r, 400));
    expect(sink.requests).toHaveLength(0);
  });
});
