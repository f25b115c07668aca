import { GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { expectApiError } from '../fixtures/gemini/api-error.js';

const MODEL = 'gemini-2.5-flash';
const T0 = Date.parse('2030-01-01T00:00:00Z');

describe('Gemini stand-in: quotas (official SDK, fake clock)', () => {
  let standIn: GeminiStandIn;
  let ai: GoogleGenAI;
  let now = T0;

  beforeAll(async () => {
    standIn = await startGeminiStandIn({ clock: () => now });
    ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: standIn.url } });
  });
  afterAll(() => standIn.close());
  beforeEach(() => {
    now = T0;
    standIn.configure({ quotas: { [MODEL]: { rpm: null, tpm: null, rpd: null } }, quotaTier: 'paid' });
    standIn.reset();
  });

  const ask = (text = 'hi') => ai.models.generateContent({ model: MODEL, contents: text });

  it('rejects over RPM with 429, QuotaFailure per-minute quotaId and the time until a slot frees', async () => {
    // Arrange
    standIn.configure({ quotas: { [MODEL]: { rpm: 2 } } });
    await ask();
    now = T0 + 10_000;
    await ask();
    // Act
    now = T0 + 15_000;
    const first = await expectApiError(() => ask());
    now = T0 + 20_000;
    const second = await expectApiError(() => ask());
    // Assert
    expect(first).toMatchObject({
      status: 429,
      rpcStatus: 'RESOURCE_EXHAUSTED',
      quotaIds: ['GenerateRequestsPerMinutePerProjectPerModel'],
      retryDelay: '45s',
    });
    expect(first.message).toMatch(/^You exceeded your current quota/);
    expect(second.retryDelay).toBe('40s');
  });

  it('does not charge a rejected request against the window', async () => {
    // Arrange: two admitted, then two rejected attempts.
    standIn.configure({ quotas: { [MODEL]: { rpm: 2 } } });
    await ask();
    now = T0 + 10_000;
    await ask();
    now = T0 + 15_000;
    await expectApiError(() => ask());
    await expectApiError(() => ask());
    // Act: the first request has left the window, the rejected ones never entered it.
    now = T0 + 60_001;
    const admitted = await ask();
    const next = await expectApiError(() => ask());
    // Assert
    expect(admitted.text).toMatch(/^echo: hi/);
    expect(next.retryDelay).toBe('10s');
    const stats = standIn.stats().models[MODEL];
    expect(stats).toMatchObject({ requests: 6, admitted: 3, rejected429: 3, peakAdmittedPer60s: 2 });
    expect(stats?.rejected429ByQuotaId).toEqual({ GenerateRequestsPerMinutePerProjectPerModel: 3 });
  });

  it('rejects over input TPM with the per-minute input token quotaId', async () => {
    // Arrange: 300 bytes = 75 tokens; the limit is 100.
    standIn.configure({ quotas: { [MODEL]: { tpm: 100 } } });
    const prompt = 'x'.repeat(300);
    await ask(prompt);
    // Act
    now = T0 + 30_000;
    const error = await expectApiError(() => ask(prompt));
    const small = await ask('y'.repeat(80));
    // Assert
    expect(error).toMatchObject({
      status: 429,
      quotaIds: ['GenerateContentPaidTierInputTokensPerModelPerMinute'],
      retryDelay: '30s',
    });
    expect(small.usageMetadata?.promptTokenCount).toBe(20);
    expect(standIn.stats().models[MODEL]?.peakInputTokensPer60s).toBe(95);
  });

  it('uses the free-tier quota names when told to', async () => {
    // Arrange
    standIn.configure({ quotaTier: 'free', quotas: { [MODEL]: { tpm: 10 } } });
    // Act
    const error = await expectApiError(() => ask('z'.repeat(100)));
    // Assert
    expect(error.quotaIds).toEqual(['GenerateContentInputTokensPerModelPerMinute-FreeTier']);
    expect(error.retryDelay).toBe('60s');
  });

  it('rejects over RPD with the per-day quotaId and a delay until the rolling day frees a request', async () => {
    // Arrange
    standIn.configure({ quotas: { [MODEL]: { rpd: 2 } } });
    await ask();
    now = T0 + 3_600_000;
    await ask();
    // Act
    now = T0 + 7_200_000;
    const error = await expectApiError(() => ask());
    // Assert
    expect(error).toMatchObject({
      status: 429,
      quotaIds: ['GenerateRequestsPerDayPerProjectPerModel'],
      retryDelay: `${22 * 3600}s`,
    });
  });

  it('keeps quotas per model and leaves batch requests out of the realtime windows', async () => {
    // Arrange
    standIn.configure({ quotas: { [MODEL]: { rpm: 1 } } });
    await ask();
    // Act
    const other = await ai.models.generateContent({ model: 'gemini-2.5-pro', contents: 'hi' });
    await ai.batches.create({
      model: MODEL,
      src: [{ contents: [{ role: 'user', parts: [{ text: 'batch' }] }] }],
    });
    const stillLimited = await expectApiError(() => ask());
    // Assert
    expect(other.text).toMatch(/^echo: hi/);
    expect(stillLimited.quotaIds).toEqual(['GenerateRequestsPerMinutePerProjectPerModel']);
    expect(standIn.stats().models[MODEL]).toMatchObject({ admitted: 1, batchesCreated: 1, batchRequests: 1 });
  });

  it('produces every 429 variant on demand with [[fault:429…]] prompt markers', async () => {
    // Act
    const minute = await expectApiError(() => ask('item [[fault:429]]'));
    const tokens = await expectApiError(() => ask('item [[fault:429-tpm]]'));
    const day = await expectApiError(() => ask('item [[fault:429-day]]'));
    // Assert
    expect(minute.quotaIds).toEqual(['GenerateRequestsPerMinutePerProjectPerModel']);
    expect(tokens.quotaIds).toEqual(['GenerateContentPaidTierInputTokensPerModelPerMinute']);
    expect(day.quotaIds).toEqual(['GenerateRequestsPerDayPerProjectPerModel']);
    expect(minute.retryDelay).toBe('1s');
    expect(standIn.stats().models[MODEL]?.admitted).toBe(0);
  });
});

describe('Gemini stand-in: latency and faults (official SDK)', () => {
  let standIn: GeminiStandIn;
  let ai: GoogleGenAI;

  beforeAll(async () => {
    standIn = await startGeminiStandIn({ seed: 7 });
    ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: standIn.url } });
  });
  afterAll(() => standIn.close());
  beforeEach(() => {
    standIn.configure({
      latency: { '*': 0, [MODEL]: 0 },
      faults: {
        internalShare: 0,
        unavailableShare: 0,
        timeoutShare: 0,
        malformedShare: 0,
        timeoutMs: 30_000,
      },
    });
    standIn.reset();
  });

  const ask = (text = 'hi') => ai.models.generateContent({ model: MODEL, contents: text });

  it('adds the configured latency before answering', async () => {
    // Arrange
    standIn.configure({ latency: { [MODEL]: { meanMs: 300, jitterMs: 50 } } });
    // Act
    const started = Date.now();
    await ask();
    const elapsed = Date.now() - started;
    // Assert
    expect(elapsed).toBeGreaterThanOrEqual(240);
  });

  it('injects 500 INTERNAL and 503 UNAVAILABLE that the SDK raises as ApiError', async () => {
    // Act
    standIn.configure({ faults: { internalShare: 1 } });
    const internal = await expectApiError(() => ask());
    standIn.configure({ faults: { internalShare: 0, unavailableShare: 1 } });
    const unavailable = await expectApiError(() => ask());
    // Assert
    expect(internal).toMatchObject({ status: 500, rpcStatus: 'INTERNAL' });
    expect(unavailable).toMatchObject({
      status: 503,
      rpcStatus: 'UNAVAILABLE',
      message: 'The model is overloaded. Please try again later.',
    });
  });

  it('holds a timed-out request open, then answers 504; a client timeout aborts earlier', async () => {
    // Arrange
    standIn.configure({ faults: { timeoutShare: 1, timeoutMs: 400 } });
    const impatient = new GoogleGenAI({
      apiKey: 'local',
      httpOptions: { baseUrl: standIn.url, timeout: 100 },
    });
    // Act
    const started = Date.now();
    const held = await expectApiError(() => ask());
    const heldFor = Date.now() - started;
    const aborted = await impatient.models.generateContent({ model: MODEL, contents: 'x' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    // Assert
    expect(held).toMatchObject({ status: 504, rpcStatus: 'DEADLINE_EXCEEDED' });
    expect(heldFor).toBeGreaterThanOrEqual(350);
    expect(aborted).toBeInstanceOf(Error);
    expect(standIn.stats().models[MODEL]?.faults.timeout).toBe(2);
  });

  it('sends malformed bodies with 200, which the SDK fails to parse', async () => {
    // Arrange
    standIn.configure({ faults: { malformedShare: 1 } });
    // Act
    const unary = await ask().then(
      () => undefined,
      (error: unknown) => error,
    );
    const streamed = await (async () => {
      for await (const _ of await ai.models.generateContentStream({ model: MODEL, contents: 'x' })) {
        // consume
      }
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    // Assert
    expect(unary).toBeInstanceOf(SyntaxError);
    expect(streamed).toBeInstanceOf(Error);
  });

  it('injects faults by prompt marker, whatever the shares', async () => {
    // Act
    const e503 = await expectApiError(() => ask('item 3 [[fault:503]]'));
    const e500 = await expectApiError(() => ask('item 4 [[fault:500]]'));
    const e400 = await expectApiError(() => ask('item 5 [[fault:400]]'));
    const fine = await ask('item 6');
    // Assert
    expect(e503.status).toBe(503);
    expect(e500.status).toBe(500);
    expect(e400).toMatchObject({ status: 400, rpcStatus: 'INVALID_ARGUMENT' });
    expect(fine.text).toMatch(/^echo: item 6/);
    expect(standIn.stats().models[MODEL]?.faults).toEqual({ '503': 1, '500': 1, '400': 1 });
  });

  it('draws random faults from a seeded PRNG, so a reset run repeats the same pattern', async () => {
    // Arrange
    standIn.configure({ faults: { internalShare: 0.3, unavailableShare: 0.3 } });
    const run = async () => {
      const outcomes: Array<number | 'ok'> = [];
      for (let i = 0; i < 20; i++) {
        outcomes.push(
          await ask(`p${i}`).then(
            () => 'ok' as const,
            (e: { status: number }) => e.status,
          ),
        );
      }
      return outcomes;
    };
    // Act
    const first = await run();
    standIn.reset();
    const second = await run();
    // Assert
    expect(second).toEqual(first);
    expect(first).toContain('ok');
    expect(first.some((o) => o !== 'ok')).toBe(true);
  });
});
