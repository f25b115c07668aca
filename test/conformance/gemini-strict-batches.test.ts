import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GoogleGenAI, JobState } from '@google/genai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { expectApiError } from '../fixtures/gemini/api-error.js';

const MODEL = 'gemini-2.5-flash-lite';
const TERMINAL: string[] = [
  JobState.JOB_STATE_SUCCEEDED,
  JobState.JOB_STATE_FAILED,
  JobState.JOB_STATE_CANCELLED,
  JobState.JOB_STATE_EXPIRED,
];

interface RestBatch {
  metadata: {
    state: string;
    batchStats: Record<string, string | undefined>;
    output?: { responsesFile?: string; inlinedResponses?: { inlinedResponses?: unknown[] } };
  };
  done?: boolean;
}

describe('Gemini stand-in, strict profile: Batch API lifecycle (official SDK, REST for batchStats)', () => {
  let standIn: GeminiStandIn;
  let ai: GoogleGenAI;
  let work: string;

  beforeAll(async () => {
    standIn = await startGeminiStandIn({ profile: 'strict', seed: 4 });
    ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: standIn.url } });
    work = await mkdtemp(join(tmpdir(), 'gemini-strict-batches-'));
  });
  afterAll(async () => {
    await standIn.close();
    await rm(work, { recursive: true, force: true });
  });
  beforeEach(() => {
    standIn.configure({ profile: 'strict', batch: { pendingMs: 20, runningMs: 1000 } });
  });
  afterEach(async () => {
    for await (const job of await ai.batches.list({ config: { pageSize: 100 } })) {
      if (!TERMINAL.includes(job.state ?? '')) await ai.batches.cancel({ name: job.name ?? '' });
    }
  });

  /** The REST resource: the SDK drops batchStats for the Gemini API. */
  async function rest(name: string): Promise<RestBatch> {
    const res = await fetch(`${standIn.url}/v1beta/${name}`, { headers: { 'x-goog-api-key': 'local' } });
    return (await res.json()) as RestBatch;
  }

  /** Polls until `until` holds for the REST resource; every resource seen is returned. */
  async function pollUntil(name: string, until: (b: RestBatch) => boolean): Promise<RestBatch[]> {
    const seen: RestBatch[] = [];
    for (let i = 0; i < 1000; i++) {
      const batch = await rest(name);
      seen.push(batch);
      if (until(batch)) return seen;
      await new Promise((r) => setTimeout(r, 15));
    }
    throw new Error(`${name}: condition never met`);
  }

  async function uploadLines(count: number): Promise<string> {
    const jsonl = Array.from({ length: count }, (_, i) =>
      JSON.stringify({
        key: `k${i}`,
        request: { contents: [{ role: 'user', parts: [{ text: `line ${i}` }] }] },
      }),
    ).join('\n');
    const file = await ai.files.upload({
      file: new Blob([jsonl], { type: 'application/jsonl' }),
      config: { mimeType: 'jsonl' },
    });
    return file.name ?? '';
  }

  const answered = (b: RestBatch) =>
    Number(b.metadata.batchStats.successfulRequestCount ?? 0) +
    Number(b.metadata.batchStats.failedRequestCount ?? 0);

  it('requires a displayName, as the REST reference says: 400 INVALID_ARGUMENT without one', async () => {
    // Arrange
    const before = standIn.stats().models[MODEL]?.batchesCreated ?? 0;
    // Act
    const refused = await expectApiError(() =>
      ai.batches.create({ model: MODEL, src: [{ contents: [{ role: 'user', parts: [{ text: 'a' }] }] }] }),
    );
    // Assert
    expect(refused).toMatchObject({ status: 400, rpcStatus: 'INVALID_ARGUMENT' });
    expect(refused.message).toMatch(/display_name/);
    expect(standIn.stats().models[MODEL]?.batchesCreated ?? 0).toBe(before);
  });

  it('moves batchStats while RUNNING: lines are answered across runningMs', async () => {
    // Arrange
    standIn.configure({ batch: { runningMs: 2000 } });
    const src = await uploadLines(20);
    // Act
    const created = await ai.batches.create({ model: MODEL, src, config: { displayName: 'moving stats' } });
    const seen = await pollUntil(created.name ?? '', (b) => b.done === true);
    // Assert
    const running = seen.filter((b) => b.metadata.state === 'BATCH_STATE_RUNNING').map(answered);
    expect(running.some((n) => n > 0 && n < 20)).toBe(true);
    expect(running).toEqual([...running].sort((a, b) => a - b));
    const last = seen.at(-1);
    expect(last?.metadata.state).toBe('BATCH_STATE_SUCCEEDED');
    expect(last?.metadata.batchStats).toEqual({ requestCount: '20', successfulRequestCount: '20' });
  });

  it('keeps the lines answered so far in a downloadable GENERATED file when cancelled while RUNNING', async () => {
    // Arrange
    standIn.configure({ batch: { runningMs: 4000 } });
    const src = await uploadLines(40);
    const created = await ai.batches.create({
      model: MODEL,
      src,
      config: { displayName: 'cancelled half way' },
    });
    await pollUntil(created.name ?? '', (b) => answered(b) >= 5);
    // Act
    await ai.batches.cancel({ name: created.name ?? '' });
    const [done] = (await pollUntil(created.name ?? '', (b) => b.metadata.output !== undefined)).slice(-1);
    const file = done?.metadata.output?.responsesFile ?? '';
    const path = join(work, 'partial.jsonl');
    await ai.files.download({ file, downloadPath: path });
    const lines = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { key: string; response?: unknown });
    // Assert
    expect(done?.metadata.state).toBe('BATCH_STATE_CANCELLED');
    expect(lines.length).toBe(answered(done as RestBatch));
    expect(lines.length).toBeGreaterThanOrEqual(5);
    expect(lines.length).toBeLessThan(40);
    expect(lines.every((l) => l.response !== undefined && /^k\d+$/.test(l.key))).toBe(true);
    expect((await ai.files.get({ name: file })).source).toBe('GENERATED');
  });

  it('keeps the inline entries answered so far when an inline batch is cancelled while RUNNING', async () => {
    // Arrange
    standIn.configure({ batch: { runningMs: 3000 } });
    const src = Array.from({ length: 30 }, (_, i) => ({
      contents: [{ role: 'user', parts: [{ text: `entry ${i}` }] }],
      metadata: { key: `e${i}` },
    }));
    const created = await ai.batches.create({
      model: MODEL,
      src,
      config: { displayName: 'inline cancelled' },
    });
    await pollUntil(created.name ?? '', (b) => answered(b) >= 3);
    // Act
    await ai.batches.cancel({ name: created.name ?? '' });
    const [done] = (await pollUntil(created.name ?? '', (b) => b.metadata.output !== undefined)).slice(-1);
    // Assert
    const kept = done?.metadata.output?.inlinedResponses?.inlinedResponses ?? [];
    expect(done?.metadata.state).toBe('BATCH_STATE_CANCELLED');
    expect(kept.length).toBe(answered(done as RestBatch));
    expect(kept.length).toBeLessThan(30);
    expect(kept[0]).toMatchObject({ metadata: { key: 'e0' } });
  });

  it('expires a batch still pending after expireAfterMs (upstream: 48 h)', async () => {
    // Arrange
    standIn.configure({ batch: { pendingMs: 60_000, expireAfterMs: 300 } });
    // Act
    const created = await ai.batches.create({
      model: MODEL,
      src: [{ contents: [{ role: 'user', parts: [{ text: 'never run' }] }] }],
      config: { displayName: 'left pending' },
    });
    const [done] = (await pollUntil(created.name ?? '', (b) => b.done === true)).slice(-1);
    const viaSdk = await ai.batches.get({ name: created.name ?? '' });
    // Assert
    expect(done?.metadata.state).toBe('BATCH_STATE_EXPIRED');
    expect(done?.metadata.output).toBeUndefined();
    expect(viaSdk.state).toBe(JobState.JOB_STATE_EXPIRED);
  });

  it('expires a batch still running, keeping what it answered', async () => {
    // Arrange
    standIn.configure({ batch: { runningMs: 30_000, expireAfterMs: 1500 } });
    const src = await uploadLines(1000);
    // Act
    const created = await ai.batches.create({ model: MODEL, src, config: { displayName: 'too slow' } });
    const [done] = (await pollUntil(created.name ?? '', (b) => b.metadata.output !== undefined)).slice(-1);
    // Assert
    expect(done?.metadata.state).toBe('BATCH_STATE_EXPIRED');
    expect(answered(done as RestBatch)).toBeGreaterThan(0);
    expect(answered(done as RestBatch)).toBeLessThan(1000);
    expect(done?.metadata.output?.responsesFile).toMatch(/^files\/batch-/);
  });

  it('refuses an inline batch body over 20 MiB as upstream, keeping smaller ones', async () => {
    // Arrange
    standIn.configure({ limits: { maxBatchRequestBytes: 32 * 1024 } });
    const entry = (bytes: number) => ({ contents: [{ role: 'user', parts: [{ text: 'x'.repeat(bytes) }] }] });
    // Act
    const big = await expectApiError(() =>
      ai.batches.create({
        model: MODEL,
        src: [entry(20_000), entry(20_000)],
        config: { displayName: 'big' },
      }),
    );
    const small = await ai.batches.create({
      model: MODEL,
      src: [entry(1000)],
      config: { displayName: 'small' },
    });
    // Assert
    expect(big).toMatchObject({
      status: 400,
      message: 'Request payload size exceeds the limit: 32768 bytes.',
    });
    expect(small.state).toBe(JobState.JOB_STATE_PENDING);
  });

  /** The inline responses of an inline batch once it has ended. */
  async function inlineAnswers(texts: string[], displayName: string) {
    const created = await ai.batches.create({
      model: MODEL,
      src: texts.map((text) => ({ contents: [{ role: 'user', parts: [{ text }] }] })),
      config: { displayName },
    });
    const [done] = (await pollUntil(created.name ?? '', (b) => b.done === true)).slice(-1);
    return (done?.metadata.output?.inlinedResponses?.inlinedResponses ?? []) as Array<{
      response?: unknown;
      error?: { code: number; status?: string };
    }>;
  }

  it('answers [[fault:batch-429|500|503]] lines with that transient error, while the same prompt alone is answered', async () => {
    // Arrange
    const texts = [
      'busy [[fault:batch-429]]',
      'broken [[fault:batch-500]]',
      'overloaded [[fault:batch-503]]',
      'fine',
    ];
    // Act
    const answers = await inlineAnswers(texts, 'transient lines');
    const alone = await ai.models.generateContent({ model: MODEL, contents: texts[2]! });
    // Assert
    expect(answers.map((a) => a.error?.code ?? 'ok')).toEqual([429, 500, 503, 'ok']);
    expect(alone.text).toMatch(/^echo: overloaded/);
  });

  it('answers transientLineShare of the lines with 429, 500 or 503', async () => {
    // Arrange
    standIn.configure({ batch: { transientLineShare: 0.5, runningMs: 200 } });
    // Act
    const answers = await inlineAnswers(
      Array.from({ length: 60 }, (_, i) => `line ${i}`),
      'transient share',
    );
    // Assert
    const codes = answers.filter((a) => a.error).map((a) => a.error!.code);
    expect(codes.length).toBeGreaterThan(10);
    expect(codes.length).toBeLessThan(50);
    expect(new Set(codes)).toEqual(new Set([429, 500, 503]));
  });
});
