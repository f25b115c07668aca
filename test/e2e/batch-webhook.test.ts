import { resolve } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { createJobsClient, type JobsClient } from '../../functions/api/client.js';
import type { JobView } from '../../functions/api/jobs.js';
import { type Stack, startStack } from '../../infra/local/stack.js';

// Gemini's batch webhooks end to end (issue 23): the stand-in pushes `batch.succeeded` to tick's
// `POST /gemini-webhook` and the batch is collected at once. This file runs its own local cloud
// (on the suite's Firestore emulator, as another project) with no Cloud Scheduler: the test calls
// the tick itself until the batch is created, and never after, so whatever collects it is the
// webhook alone.

const MODEL = 'gemini-2.5-flash';

let local: Stack;
let client: JobsClient;
let ticks = 0;

beforeAll(async () => {
  local = await startStack({
    projectId: 'fanout-e2e-webhook',
    portBase: 0,
    firestoreHost: inject('firestoreEmulatorHost'),
    quotasFile: resolve(import.meta.dirname, '..', 'fixtures', 'quotas.e2e.json'),
    schedulerIntervalMs: 0,
    standIn: { batch: { pendingMs: 100, runningMs: 500 } },
    logLevel: process.env.E2E_LOG_LEVEL ?? 'silent',
  });
  client = createJobsClient(local.info.ingestUrl);
}, 180_000);

afterAll(async () => {
  await local?.close();
});

/** One Cloud Scheduler call of the tick (its OIDC token), counted. */
async function tickOnce(): Promise<void> {
  ticks++;
  const { tickUrl, schedulerServiceAccount } = local.info;
  const res = await fetch(tickUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${local.issuer.idToken(schedulerServiceAccount, tickUrl)}`,
    },
    body: '{}',
  });
  await res.body?.cancel();
}

/** Ticks until the job's batch exists upstream (upload and create); its name. No tick after. */
async function submitted(id: string): Promise<string> {
  for (let i = 0; i < 10; i++) {
    await tickOnce();
    const name = (await client.get(id)).batches?.[0]?.name;
    if (name) return name;
  }
  throw new Error(`job ${id}: no batch after 10 ticks`);
}

async function upstreamState(batchName: string): Promise<string> {
  const res = await fetch(`${local.info.geminiBaseUrl}/v1beta/${batchName}`, {
    headers: { 'x-goog-api-key': 'local' },
  });
  return ((await res.json()) as { metadata: { state: string } }).metadata.state;
}

async function waitUntil<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A delivery to tick's webhook route, signed with `key` at `atSeconds`. */
async function postWebhook(body: string, options: { key: string; atSeconds?: number; signedBody?: string }) {
  const at = options.atSeconds ?? Math.floor(Date.now() / 1000);
  const id = `msg_test_${at}_${Math.random()}`;
  const signature = new Webhook(options.key).sign(id, new Date(at * 1000), options.signedBody ?? body);
  const res = await fetch(local.webhook!.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(at),
      'webhook-signature': signature,
    },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function batchJob(prompts: number, tag: string) {
  return client.submit({
    model: MODEL,
    mode: 'batch',
    prompts: Array.from({ length: prompts }, (_, i) => `${tag} prompt ${i}`),
  });
}

function expectAllAnswered(job: JobView, total: number) {
  expect(job).toMatchObject({
    status: 'succeeded',
    counts: { total, succeeded: total, failed: 0, pending: 0 },
    paths: { realtime: 0, batch: total },
  });
}

describe('batch webhooks through the local cloud', () => {
  it('collects a batch as soon as Gemini pushes its end, with no poll after its creation', async () => {
    // Arrange
    const { id } = await batchJob(12, 'pushed');
    const batchName = await submitted(id);
    const ticksAtCreate = ticks;

    // Act: no tick from here on.
    const job = await waitUntil(
      'the job',
      () => client.get(id),
      (j) => j.status === 'succeeded',
    );

    // Assert
    expect(ticks).toBe(ticksAtCreate);
    expectAllAnswered(job, 12);
    expect(job.batches?.[0]).toMatchObject({ name: batchName, state: 'SUCCEEDED' });
    const results = [];
    for await (const entry of client.resultsJsonl(id)) results.push(entry);
    expect(results.map((r) => r.index)).toEqual([...Array(12).keys()]);
    expect(results.every((r) => 'response' in r)).toBe(true);
    const pushed = local.standIn!.webhookDeliveries().filter((d) => d.batch === batchName);
    expect(pushed).toEqual([expect.objectContaining({ type: 'batch.succeeded', status: 200 })]);
  }, 60_000);

  it('refuses forged deliveries with 401 and moves nothing; the genuine one, twice, collects once', async () => {
    // Arrange: the stand-in pushes nothing for this batch; the test delivers instead.
    local.standIn!.configure({ webhooks: { url: null } });
    onTestFinished(() => {
      local.standIn!.configure({ webhooks: { url: local.webhook!.url } });
    });
    const { id } = await batchJob(8, 'forged');
    const batchName = await submitted(id);
    await waitUntil(
      'the batch',
      () => upstreamState(batchName),
      (s) => s === 'BATCH_STATE_SUCCEEDED',
    );
    // Pushes stay off until this test ends (onTestFinished above): the stand-in sends a batch's end only once its run has
    // cleaned up, after the state reads SUCCEEDED, and a push turned on here raced that (in one CI
    // run the stand-in's own push collected the job before the forgeries were checked).
    const body = JSON.stringify({
      type: 'batch.succeeded',
      version: 'v1',
      timestamp: new Date().toISOString(),
      data: { id: batchName.slice('batches/'.length) },
    });
    const other = `whsec_${Buffer.from('not the secret tick was given!!!').toString('base64')}`;
    const secret = local.webhook!.secret;

    // Act: a wrong key, a stale timestamp (a replay), a body changed after signing.
    const forged = [
      await postWebhook(body, { key: other }),
      await postWebhook(body, { key: secret, atSeconds: Math.floor(Date.now() / 1000) - 600 }),
      await postWebhook(body, { key: secret, signedBody: body.replace('succeeded', 'failed') }),
    ];
    await new Promise((r) => setTimeout(r, 1000));
    const meanwhile = await client.get(id);

    // Assert: refused, the job untouched.
    for (const answer of forged) {
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ error: { code: 401, status: 'UNAUTHENTICATED' } });
    }
    expect(meanwhile).toMatchObject({ status: 'running', counts: { pending: 8, succeeded: 0 } });

    // Act: the genuine event, delivered twice at once (at least once), with no tick.
    const genuine = await Promise.all([
      postWebhook(body, { key: secret }),
      postWebhook(body, { key: secret }),
    ]);
    const job = await waitUntil(
      'the job',
      () => client.get(id),
      (j) => j.status === 'succeeded',
    );

    // Assert
    expect(genuine.map((g) => g.status)).toEqual([200, 200]);
    expectAllAnswered(job, 8);
    const results = [];
    for await (const entry of client.resultsJsonl(id)) results.push(entry);
    expect(results).toHaveLength(8);
  }, 60_000);

  it('takes duplicate pushes of the same event harmlessly', async () => {
    // Arrange
    local.standIn!.configure({ webhooks: { duplicates: 3 } });
    const { id } = await batchJob(6, 'duplicated');
    const batchName = await submitted(id);

    // Act
    const job = await waitUntil(
      'the job',
      () => client.get(id),
      (j) => j.status === 'succeeded',
    );
    const deliveries = await waitUntil(
      'the duplicates',
      async () => local.standIn!.webhookDeliveries().filter((d) => d.batch === batchName),
      (d) => d.length >= 4,
    );

    // Assert: four deliveries of one event, all answered 200, each answer counted once.
    local.standIn!.configure({ webhooks: { duplicates: 0 } });
    expect(new Set(deliveries.map((d) => d.webhookId)).size).toBe(1);
    expect(deliveries.map((d) => d.status)).toEqual([200, 200, 200, 200]);
    expectAllAnswered(job, 6);
    expect(await client.get(id)).toMatchObject({ counts: { succeeded: 6 }, usage: job.usage });
  }, 60_000);
});
