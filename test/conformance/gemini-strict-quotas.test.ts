import { GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { expectApiError } from '../fixtures/gemini/api-error.js';

const MODEL = 'gemini-2.5-flash-lite';
/** 23:59:50 in Los Angeles on 15 January 2030 (PST, UTC-8). */
const BEFORE_WINTER_MIDNIGHT = Date.parse('2030-01-16T07:59:50Z');
/** 23:59:58 in Los Angeles on 15 July 2030 (PDT, UTC-7). */
const BEFORE_SUMMER_MIDNIGHT = Date.parse('2030-07-16T06:59:58Z');
const CAPACITY_BODY = {
  error: {
    code: 429,
    message: 'Resource has been exhausted (e.g. check quota).',
    status: 'RESOURCE_EXHAUSTED',
  },
};

describe('Gemini stand-in, strict profile: quota windows and 429 shapes (official SDK, fake clock)', () => {
  let standIn: GeminiStandIn;
  let ai: GoogleGenAI;
  let now = BEFORE_WINTER_MIDNIGHT;

  beforeAll(async () => {
    standIn = await startGeminiStandIn({ profile: 'strict', seed: 5, clock: () => now });
    ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: standIn.url } });
  });
  afterAll(() => standIn.close());
  beforeEach(() => {
    now = BEFORE_WINTER_MIDNIGHT;
    standIn.configure({
      profile: 'strict',
      quota: {
        bareShare: 0,
        noRetryInfoShare: 0,
        clockOffsetMs: 0,
        otherTraffic: { [MODEL]: { rpmShare: 0, tpmShare: 0 } },
      },
      faults: { capacityShare: 0 },
      quotas: { [MODEL]: { rpm: null, tpm: null, rpd: null } },
    });
    standIn.reset();
  });

  const ask = (text = 'hi') => ai.models.generateContent({ model: MODEL, contents: text });

  /** The raw body of a 429 (the SDK puts it in the ApiError's message). */
  async function raw429(text = 'hi'): Promise<unknown> {
    const res = await fetch(`${standIn.url}/v1beta/models/${MODEL}:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': 'local' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text }] }] }),
    });
    expect(res.status).toBe(429);
    return res.json();
  }

  it('resets the daily quota at midnight in Los Angeles, and its 429 says the seconds until then', async () => {
    // Arrange
    standIn.configure({ quotas: { [MODEL]: { rpd: 2 } } });
    await ask();
    await ask();
    // Act
    const beforeMidnight = await expectApiError(() => ask());
    now = Date.parse('2030-01-16T08:00:00Z');
    const afterMidnight = await ask();
    // Assert
    expect(beforeMidnight).toMatchObject({
      status: 429,
      quotaIds: ['GenerateRequestsPerDayPerProjectPerModel'],
      retryDelay: '10s',
    });
    expect(afterMidnight.text).toMatch(/^echo: hi/);
  });

  it('follows daylight saving time, and a rolling day (the ideal window) would still refuse', async () => {
    // Arrange
    now = BEFORE_SUMMER_MIDNIGHT;
    standIn.configure({ quotas: { [MODEL]: { rpd: 1 } } });
    await ask();
    // Act
    const summer = await expectApiError(() => ask());
    now += 2000;
    standIn.configure({ quota: { dayWindow: 'rolling' } });
    const rolling = await expectApiError(() => ask());
    standIn.configure({ quota: { dayWindow: 'pacific' } });
    const pacific = await ask();
    // Assert
    expect(summer.retryDelay).toBe('2s');
    expect(rolling.retryDelay).toBe(`${24 * 3600 - 2}s`);
    expect(pacific.text).toBeDefined();
  });

  it('moves the quota clock at run time with quota.clockOffsetMs (POST /__standin/config)', async () => {
    // Arrange: the server clock stands at noon; the offset puts the quota clock a second before midnight.
    now = Date.parse('2030-03-01T20:00:00Z');
    const toMidnight = Date.parse('2030-03-02T08:00:00Z') - now;
    const offset = (ms: number) =>
      fetch(`${standIn.url}/__standin/config`, {
        method: 'POST',
        body: JSON.stringify({ quota: { clockOffsetMs: ms } }),
      });
    standIn.configure({ quotas: { [MODEL]: { rpd: 1 } } });
    await offset(toMidnight - 1000);
    await ask();
    // Act
    const refused = await expectApiError(() => ask());
    await offset(toMidnight + 1000);
    const admitted = await ask();
    // Assert
    expect(refused.retryDelay).toBe('1s');
    expect(admitted.text).toBeDefined();
  });

  it('sends a share of quota 429s bare (the capacity body) or without RetryInfo', async () => {
    // Arrange
    standIn.configure({ quotas: { [MODEL]: { rpm: 1 } } });
    await ask();
    // Act
    standIn.configure({ quota: { bareShare: 1 } });
    const bare = await raw429();
    const bareViaSdk = await expectApiError(() => ask());
    standIn.configure({ quota: { bareShare: 0, noRetryInfoShare: 1 } });
    const noRetry = await expectApiError(() => ask());
    standIn.configure({ quota: { bareShare: 0.3, noRetryInfoShare: 0.3 } });
    const mixed = [];
    for (let i = 0; i < 30; i++) mixed.push(await expectApiError(() => ask()));
    // Assert
    expect(bare).toEqual(CAPACITY_BODY);
    expect(bareViaSdk).toMatchObject({ status: 429, quotaIds: [], rpcStatus: 'RESOURCE_EXHAUSTED' });
    expect(bareViaSdk.retryDelay).toBeUndefined();
    expect(noRetry.quotaIds).toEqual(['GenerateRequestsPerMinutePerProjectPerModel']);
    expect(noRetry.retryDelay).toBeUndefined();
    expect(noRetry.message).not.toMatch(/Please retry in/);
    const kinds = new Set(
      mixed.map((e) => (e.quotaIds.length === 0 ? 'bare' : e.retryDelay ? 'full' : 'no-retry')),
    );
    expect(kinds).toEqual(new Set(['bare', 'no-retry', 'full']));
    expect(standIn.stats().models[MODEL]?.admitted).toBe(1);
  });

  it('answers capacity 429s whatever the quota, by share or marker, consuming nothing', async () => {
    // Arrange
    standIn.configure({ faults: { capacityShare: 1 } });
    // Act
    const byShare = await raw429();
    standIn.configure({ faults: { capacityShare: 0 } });
    const byMarker = await raw429('please [[fault:429-capacity]]');
    const noRetryMarker = await expectApiError(() => ask('[[fault:429-no-retry]]'));
    // Assert
    expect(byShare).toEqual(CAPACITY_BODY);
    expect(byMarker).toEqual(CAPACITY_BODY);
    expect(noRetryMarker.quotaIds).toEqual(['GenerateRequestsPerMinutePerProjectPerModel']);
    expect(noRetryMarker.retryDelay).toBeUndefined();
    expect(standIn.stats().models[MODEL]).toMatchObject({ admitted: 0, rejected429: 3 });
  });

  it('lets other traffic of the project eat RPM the product cannot see, steadily', async () => {
    // Arrange: other traffic sends half of 10 RPM, one request every 12 s, already a minute long.
    standIn.configure({
      quotas: { [MODEL]: { rpm: 10 } },
      quota: { otherTraffic: { [MODEL]: { rpmShare: 0.5 } } },
    });
    // Act
    const first: string[] = [];
    for (let i = 0; i < 6; i++)
      first.push(
        await ask(`a${i}`).then(
          () => 'ok',
          () => '429',
        ),
      );
    const refused = await expectApiError(() => ask());
    now += 60_000;
    const second: string[] = [];
    for (let i = 0; i < 6; i++)
      second.push(
        await ask(`b${i}`).then(
          () => 'ok',
          () => '429',
        ),
      );
    // Assert
    expect(first).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', '429']);
    expect(refused).toMatchObject({
      quotaIds: ['GenerateRequestsPerMinutePerProjectPerModel'],
      retryDelay: '12s',
    });
    expect(second).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', '429']);
    expect(standIn.stats().models[MODEL]).toMatchObject({ requests: 13, admitted: 10 });
  });

  it('lets other traffic eat TPM as well', async () => {
    // Arrange: 40% of 1,000 TPM is other traffic's; a 2,000-character prompt is 625 tokens (3.2 a token).
    standIn.configure({
      quotas: { [MODEL]: { tpm: 1000 } },
      quota: { otherTraffic: { [MODEL]: { tpmShare: 0.4 } } },
    });
    // Act
    const big = await expectApiError(() => ask('a'.repeat(2000)));
    const fits = await ask('a'.repeat(1600));
    // Assert
    expect(big.quotaIds).toEqual(['GenerateContentPaidTierInputTokensPerModelPerMinute']);
    expect(fits.usageMetadata?.promptTokenCount).toBe(500);
  });
});
