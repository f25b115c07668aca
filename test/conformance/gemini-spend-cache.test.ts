import { GoogleGenAI, ServiceTier } from '@google/genai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { expectApiError } from '../fixtures/gemini/api-error.js';

const MODEL = 'gemini-2.5-flash';
const OTHER = 'gemini-2.5-pro';
const T0 = Date.parse('2030-01-01T00:00:00Z');
const WINDOW_MS = 600_000;
const SPEND_ID = 'GenerateContentPaidTierSpendPerProjectPer10Minutes';

/**
 * The project's spend-based rate limit (the rate-limits page: a limit per rolling 10 minutes, 429
 * RESOURCE_EXHAUSTED past it; its quotaId is a hypothesis, a setting) and implicit caching of
 * repeated prefixes (the caching page: from a per-model minimum, `cachedContentTokenCount`), through
 * the official SDK on a fake clock.
 */
describe('Gemini stand-in: spend limit and implicit cache (official SDK, fake clock)', () => {
  let standIn: GeminiStandIn;
  let ai: GoogleGenAI;
  let now = T0;

  beforeAll(async () => {
    standIn = await startGeminiStandIn({ clock: () => now, models: [MODEL, OTHER] });
    ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: standIn.url } });
  });
  afterAll(() => standIn.close());
  beforeEach(() => {
    now = T0;
    standIn.configure({
      // A hundredth of a cent a token, so a few dozen requests reach the limit.
      spend: {
        limitUsd: 0.05,
        windowMs: WINDOW_MS,
        prices: {
          [MODEL]: { inputPerMillion: 100, outputPerMillion: 100, cachedInputPerMillion: 10 },
          [OTHER]: { inputPerMillion: 100, outputPerMillion: 100 },
        },
      },
      implicitCache: { enabled: false, minTokens: { [MODEL]: 1024 }, entries: 1, ttlMs: 300_000 },
      serviceTiers: { flex: { minMs: 0, maxMs: 0, capacityFull: false, shedShare: 0 } },
    });
    standIn.reset();
  });

  const ask = (text: string, model = MODEL, serviceTier?: ServiceTier, systemInstruction?: string) =>
    ai.models.generateContent({
      model,
      contents: text,
      config: {
        ...(serviceTier ? { serviceTier } : {}),
        ...(systemInstruction ? { systemInstruction } : {}),
      },
    });
  /** What an answer billed at the test prices: a hundredth of a cent per token, cached ones a tenth of that. */
  const billed = (u: {
    promptTokenCount?: number;
    candidatesTokenCount?: number;
    cachedContentTokenCount?: number;
  }) =>
    ((u.promptTokenCount ?? 0) - (u.cachedContentTokenCount ?? 0)) * 0.0001 +
    (u.cachedContentTokenCount ?? 0) * 0.00001 +
    (u.candidatesTokenCount ?? 0) * 0.0001;

  it('refuses the request that would take the rolling window over the limit, across models', async () => {
    // Arrange / Act: requests on two models until one is refused.
    let spent = 0;
    let admitted = 0;
    for (; admitted < 100; admitted++) {
      const model = admitted % 2 ? OTHER : MODEL;
      try {
        spent += billed((await ask(`question number ${admitted} about spending`, model)).usageMetadata ?? {});
      } catch {
        break;
      }
    }
    const error = await expectApiError(() => ask('question number 99 about spending'));
    // Assert: what was admitted fits, and the refusal is the spend limit's 429.
    expect(admitted).toBeGreaterThan(2);
    expect(admitted).toBeLessThan(100);
    expect(spent).toBeLessThanOrEqual(0.05 + 1e-9);
    expect(error).toMatchObject({ status: 429, rpcStatus: 'RESOURCE_EXHAUSTED', quotaIds: [SPEND_ID] });
    expect(error.retryDelay).toBe(`${WINDOW_MS / 1000}s`);
    expect(standIn.stats().spend).toMatchObject({ limitUsd: 0.05, requests: admitted });
    expect(standIn.stats().spend.busiestWindowUsd).toBeLessThanOrEqual(0.05 + 1e-9);
  });

  it('admits again once the window has rolled past the spend, and counts Flex at half the price', async () => {
    let admitted = 0;
    while (admitted < 100) {
      try {
        await ask(`standard question ${admitted}`);
        admitted++;
      } catch {
        break;
      }
    }
    now += WINDOW_MS;
    let flex = 0;
    while (flex < 200) {
      try {
        await ask(`standard question ${flex}`, MODEL, ServiceTier.FLEX);
        flex++;
      } catch {
        break;
      }
    }
    // The same answers at half the price: about twice as many fit in a window.
    expect(flex).toBeGreaterThanOrEqual(2 * admitted - 1);
  });

  it('has no spend limit when none is set', async () => {
    standIn.configure({ spend: { limitUsd: null } });
    for (let n = 0; n < 60; n++) await ask(`question ${n}`);
    expect(standIn.stats().spend.requests).toBe(0);
  });

  describe('implicit cache', () => {
    const A = 'Shared context A. '.repeat(300); // 5,400 bytes: 1,350 tokens
    const B = 'Shared context B. '.repeat(300);
    beforeEach(() => {
      standIn.configure({ spend: { limitUsd: null }, implicitCache: { enabled: true } });
    });
    const cached = async (text: string, systemInstruction?: string) =>
      (await ask(text, MODEL, undefined, systemInstruction)).usageMetadata?.cachedContentTokenCount ?? 0;

    it('serves the prefix a request shares with the latest one from the cache, from the minimum on', async () => {
      expect(await cached(`${A} first question`)).toBe(0);
      const hit = await cached(`${A} second question`);
      // The shared prefix: A and the space before "first"/"second", by the token rule (bytes / 4).
      expect(hit).toBe(Math.ceil(Buffer.byteLength(`${A} `) / 4));
      expect(hit).toBeGreaterThanOrEqual(1024);
    });

    it('reads the system instruction first, then the contents', async () => {
      expect(await cached('question one', A)).toBe(0);
      expect(await cached('question two', A)).toBeGreaterThanOrEqual(1024);
    });

    it("serves nothing below the model minimum (Pro's 4,096 included) or past the TTL", async () => {
      const short = 'Short shared prefix. '.repeat(20);
      await cached(`${short} one`);
      expect(await cached(`${short} two`)).toBe(0);
      await ask(`${A} one`, OTHER);
      expect((await ask(`${A} two`, OTHER)).usageMetadata?.cachedContentTokenCount ?? 0).toBe(0);
      await cached(`${A} one`);
      now += 300_001;
      expect(await cached(`${A} two`)).toBe(0);
    });

    it('keeps one prefix warm per model by default: interleaving earns nothing, runs earn every repeat', async () => {
      const interleaved = [];
      for (let n = 0; n < 6; n++) interleaved.push(await cached(`${n % 2 ? B : A} q${n}`));
      standIn.reset();
      const runs = [];
      for (let n = 0; n < 6; n++) runs.push(await cached(`${n < 3 ? A : B} q${n}`));
      expect(interleaved.filter((c) => c > 0)).toHaveLength(0);
      expect(runs.filter((c) => c > 0)).toHaveLength(4);
    });

    it('bills the cached tokens at the cached price under a spend limit', async () => {
      standIn.configure({ spend: { limitUsd: 100 } });
      const first = (await ask(`${A} one`)).usageMetadata ?? {};
      const second = (await ask(`${A} two`)).usageMetadata ?? {};
      expect(second.cachedContentTokenCount).toBeGreaterThan(0);
      expect(standIn.stats().spend.admittedUsd).toBeCloseTo(billed(first) + billed(second), 9);
    });
  });
});
