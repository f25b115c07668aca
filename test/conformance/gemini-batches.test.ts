import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BatchJob, GoogleGenAI, JobState } from '@google/genai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { expectApiError } from '../fixtures/gemini/api-error.js';

const MODEL = 'gemini-2.5-flash';
const TERMINAL = [
  JobState.JOB_STATE_SUCCEEDED,
  JobState.JOB_STATE_FAILED,
  JobState.JOB_STATE_CANCELLED,
  JobState.JOB_STATE_EXPIRED,
];

interface ResultLine {
  key: string;
  response?: { candidates: Array<{ content: { parts: Array<{ text: string }> } }> };
  error?: { code: number; message: string; status: string };
}

describe('Gemini stand-in: Batch API (official SDK)', () => {
  let standIn: GeminiStandIn;
  let ai: GoogleGenAI;
  let work: string;

  beforeAll(async () => {
    standIn = await startGeminiStandIn({ seed: 11, batch: { pendingMs: 50, runningMs: 150 } });
    ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: standIn.url } });
    work = await mkdtemp(join(tmpdir(), 'gemini-batches-test-'));
  });
  afterAll(async () => {
    await standIn.close();
    await rm(work, { recursive: true, force: true });
  });
  beforeEach(() => {
    standIn.configure({
      batch: {
        pendingMs: 50,
        runningMs: 150,
        failedLineShare: 0,
        forceOutcome: null,
        maxConcurrent: 100,
        enqueuedTokenLimit: null,
      },
    });
  });

  afterEach(async () => {
    // Batches left open would count against the next test's caps.
    for await (const job of await ai.batches.list({ config: { pageSize: 100 } })) {
      if (!TERMINAL.includes(job.state as JobState)) await ai.batches.cancel({ name: job.name ?? '' });
    }
  });

  async function waitUntilDone(name: string): Promise<BatchJob> {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const job = await ai.batches.get({ name });
      seen.add(job.state ?? '');
      if (TERMINAL.includes(job.state as JobState)) return Object.assign(job, { seenStates: [...seen] });
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`${name} did not finish`);
  }

  it('runs a file batch to a shuffled output file with failing lines, joined back by key', async () => {
    // Arrange
    standIn.configure({ batch: { failedLineShare: 0.2 } });
    const keys = Array.from({ length: 40 }, (_, i) => `item-${i}`);
    const jsonl = keys
      .map((key, i) =>
        JSON.stringify({
          key,
          request: {
            contents: [
              { role: 'user', parts: [{ text: i === 7 ? `prompt ${i} [[fault:503]]` : `prompt ${i}` }] },
            ],
          },
        }),
      )
      .join('\n');
    const input = await ai.files.upload({
      file: new Blob([jsonl], { type: 'application/jsonl' }),
      config: { displayName: 'batch-input', mimeType: 'application/jsonl' },
    });
    // Act
    const created = await ai.batches.create({
      model: MODEL,
      src: input.name ?? '',
      config: { displayName: 'file batch' },
    });
    const done = (await waitUntilDone(created.name ?? '')) as BatchJob & { seenStates: string[] };
    const outPath = join(work, 'results.jsonl');
    await ai.files.download({ file: done.dest?.fileName ?? '', downloadPath: outPath });
    const lines = (await readFile(outPath, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ResultLine);
    // Assert
    expect(created.state).toBe(JobState.JOB_STATE_PENDING);
    expect(created.name).toMatch(/^batches\/[a-z0-9]{40}$/);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.seenStates).toContain(JobState.JOB_STATE_RUNNING);
    expect(done.displayName).toBe('file batch');
    expect(done.model).toBe(`models/${MODEL}`);
    expect(done.endTime).toBeDefined();
    expect(done.dest?.fileName).toBe(`files/batch-${created.name?.split('/')[1]}`);
    expect(lines.map((l) => l.key).sort()).toEqual([...keys].sort());
    expect(lines.map((l) => l.key)).not.toEqual(keys);
    const byKey = new Map(lines.map((l) => [l.key, l]));
    expect(byKey.get('item-7')?.error).toMatchObject({ code: 503, status: 'UNAVAILABLE' });
    const failed = lines.filter((l) => l.error);
    expect(failed.length).toBeGreaterThan(1);
    expect(failed.length).toBeLessThan(20);
    for (const [i, key] of keys.entries()) {
      const line = byKey.get(key);
      if (line?.response)
        expect(line.response.candidates[0]?.content.parts[0]?.text).toMatch(
          new RegExp(`^echo: prompt ${i} #`),
        );
    }
    const resultFile = await ai.files.get({ name: done.dest?.fileName ?? '' });
    expect(resultFile.source).toBe('GENERATED');
  });

  it('reports batchStats with int64 strings in the REST resource the SDK does not surface', async () => {
    // Arrange
    const created = await ai.batches.create({
      model: MODEL,
      src: [
        { contents: [{ role: 'user', parts: [{ text: 'a' }] }], metadata: { key: 'a' } },
        { contents: [{ role: 'user', parts: [{ text: 'b [[fault:500]]' }] }], metadata: { key: 'b' } },
      ],
    });
    await waitUntilDone(created.name ?? '');
    // Act
    const raw = (await (
      await fetch(`${standIn.url}/v1beta/${created.name}`, { headers: { 'x-goog-api-key': 'local' } })
    ).json()) as Record<string, Record<string, unknown>>;
    // Assert
    expect(raw.metadata).toMatchObject({
      '@type': 'type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch',
      state: 'BATCH_STATE_SUCCEEDED',
      batchStats: { requestCount: '2', successfulRequestCount: '1', failedRequestCount: '1' },
    });
    expect(raw.done).toBe(true);
    expect(raw.response?.['@type']).toBe(
      'type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput',
    );
  });

  it('runs an inline batch to inlined responses in input order, keys in metadata', async () => {
    // Arrange
    const src = ['alpha', 'beta [[fault:400]]', 'gamma'].map((text, i) => ({
      contents: [{ role: 'user', parts: [{ text }] }],
      metadata: { key: `k${i}` },
    }));
    // Act
    const created = await ai.batches.create({ model: MODEL, src, config: { displayName: 'inline' } });
    const done = await waitUntilDone(created.name ?? '');
    // Assert
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const responses = done.dest?.inlinedResponses ?? [];
    expect(responses.map((r) => r.metadata?.key)).toEqual(['k0', 'k1', 'k2']);
    // The SDK hands inlined responses back as plain objects (no `.text` getter).
    expect(responses[0]?.response?.candidates?.[0]?.content?.parts?.[0]?.text).toMatch(/^echo: alpha #/);
    expect(responses[1]?.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
    expect(responses[2]?.response?.candidates?.[0]?.content?.parts?.[0]?.text).toMatch(/^echo: gamma #/);
  });

  it('cancels a pending batch', async () => {
    // Arrange
    standIn.configure({ batch: { pendingMs: 5_000 } });
    const created = await ai.batches.create({ model: MODEL, src: [{ contents: 'x' }] });
    // Act
    await ai.batches.cancel({ name: created.name ?? '' });
    const job = await ai.batches.get({ name: created.name ?? '' });
    // Assert
    expect(job.state).toBe(JobState.JOB_STATE_CANCELLED);
    expect(job.endTime).toBeDefined();
    expect(job.dest).toBeUndefined();
  });

  it('expires a batch marked [[batch:expire]] and fails every batch when forced to', async () => {
    // Act
    const expiring = await ai.batches.create({
      model: MODEL,
      src: [{ contents: 'x' }],
      config: { displayName: 'nightly [[batch:expire]]' },
    });
    const expired = await waitUntilDone(expiring.name ?? '');
    standIn.configure({ batch: { forceOutcome: 'fail' } });
    const failing = await ai.batches.create({ model: MODEL, src: [{ contents: 'y' }] });
    const failed = await waitUntilDone(failing.name ?? '');
    // Assert
    expect(expired.state).toBe(JobState.JOB_STATE_EXPIRED);
    expect(failed.state).toBe(JobState.JOB_STATE_FAILED);
    expect(failed.dest).toBeUndefined();
  });

  it('lists batches page by page and deletes one; unknown ones are 404', async () => {
    // Arrange
    const created: string[] = [];
    for (let i = 0; i < 3; i++) {
      created.push((await ai.batches.create({ model: MODEL, src: [{ contents: `l${i}` }] })).name ?? '');
    }
    // Act
    const firstPage = await ai.batches.list({ config: { pageSize: 2 } });
    const listed: string[] = [];
    for await (const job of await ai.batches.list({ config: { pageSize: 2 } })) listed.push(job.name ?? '');
    await ai.batches.delete({ name: created[0] ?? '' });
    const gone = await expectApiError(() => ai.batches.get({ name: created[0] ?? '' }));
    const badModel = await expectApiError(() =>
      ai.batches.create({ model: 'nope', src: [{ contents: 'x' }] }),
    );
    // Assert
    expect(firstPage.page.length).toBe(2);
    expect(listed).toEqual(expect.arrayContaining(created));
    expect(gone).toMatchObject({ status: 404, rpcStatus: 'NOT_FOUND' });
    expect(badModel.status).toBe(404);
  });

  /** Creates an inline batch of `requests` prompts of `tokens` input tokens each (text rule: 4 bytes a token). */
  const createInline = (model: string, requests: number, tokens: number, displayName?: string) =>
    ai.batches.create({
      model,
      src: Array.from({ length: requests }, () => ({ contents: 'abcd'.repeat(tokens) })),
      ...(displayName ? { config: { displayName } } : {}),
    });

  /** The same creation, raw, to read the header in which the stand-in names the cap. */
  const capHeader = async (model: string, tokens: number) => {
    const res = await fetch(`${standIn.url}/v1beta/models/${model}:batchGenerateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': 'local', 'content-type': 'application/json' },
      body: JSON.stringify({
        batch: {
          inputConfig: {
            requests: {
              requests: [
                { request: { contents: [{ role: 'user', parts: [{ text: 'abcd'.repeat(tokens) }] }] } },
              ],
            },
          },
        },
      }),
    });
    return { status: res.status, cap: res.headers.get('x-standin-batch-cap') };
  };

  const openBatches = () => {
    const { BATCH_STATE_PENDING = 0, BATCH_STATE_RUNNING = 0 } = standIn.stats().batches;
    return BATCH_STATE_PENDING + BATCH_STATE_RUNNING;
  };

  it('refuses a batch beyond maxConcurrent open ones with the upstream 429, creating nothing', async () => {
    // Arrange
    const open = openBatches();
    standIn.configure({ batch: { pendingMs: 5_000, maxConcurrent: open + 2 } });
    await createInline(MODEL, 1, 1);
    await createInline('gemini-2.5-pro', 1, 1);
    // Act
    const refused = await expectApiError(() => createInline(MODEL, 1, 1, 'one too many'));
    const raw = await capHeader(MODEL, 1);
    // Assert
    expect(refused).toMatchObject({ status: 429, rpcStatus: 'RESOURCE_EXHAUSTED', quotaIds: [] });
    expect(refused.message).toMatch(/^You exceeded your current quota/);
    expect(refused.retryDelay).toBeUndefined();
    expect(raw).toEqual({ status: 429, cap: 'concurrent-batches' });
    expect(openBatches()).toBe(open + 2);
  });

  it("refuses a batch over its model's enqueued-token cap until an open batch of that model ends", async () => {
    // Arrange: 10 tokens a prompt; 30 may be enqueued for MODEL, other models are not capped.
    standIn.configure({ batch: { pendingMs: 5_000, enqueuedTokenLimit: { [MODEL]: 30 } } });
    const first = await createInline(MODEL, 2, 10);
    await createInline(MODEL, 1, 10);
    // Act
    const refused = await expectApiError(() => createInline(MODEL, 1, 10));
    const raw = await capHeader(MODEL, 1);
    const otherModel = await createInline('gemini-2.5-pro', 10, 10);
    await ai.batches.cancel({ name: first.name ?? '' });
    const afterCancel = await createInline(MODEL, 2, 10);
    standIn.configure({ batch: { enqueuedTokenLimit: 15 } });
    const everyModel = await expectApiError(() => createInline('gemini-2.0-flash', 2, 10));
    // Assert
    expect(refused).toMatchObject({ status: 429, rpcStatus: 'RESOURCE_EXHAUSTED' });
    expect(raw).toEqual({ status: 429, cap: 'enqueued-tokens' });
    expect(otherModel.state).toBe(JobState.JOB_STATE_PENDING);
    expect(afterCancel.state).toBe(JobState.JOB_STATE_PENDING);
    expect(everyModel.status).toBe(429);
  });
});
