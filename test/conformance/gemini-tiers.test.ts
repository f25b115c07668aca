import { GoogleGenAI, ServiceTier } from '@google/genai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { expectApiError } from '../fixtures/gemini/api-error.js';

const MODEL = 'gemini-2.5-flash';
const T0 = Date.parse('2030-01-01T00:00:00Z');

/**
 * Flex and Priority through the official SDK (`config.serviceTier`), as the Gemini API docs'
 * "Flex inference" and "Priority inference" pages describe them: Flex waits minutes (here scaled to
 * milliseconds), counts against the ordinary limits and is shed with 503 when full; Priority is
 * capped at 0.3× the limits and served as standard beyond; `x-gemini-service-tier` says which.
 */
describe('Gemini stand-in: service tiers (official SDK, fake quota clock)', () => {
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
    standIn.configure({
      quotas: { [MODEL]: { rpm: null, tpm: null, rpd: null } },
      serviceTiers: {
        flex: { minMs: 60_000, maxMs: 60_000, timeScale: 0.001, capacityFull: false, shedShare: 0 },
        priority: { limitShare: 0.3 },
      },
    });
    standIn.reset();
  });

  const ask = (serviceTier?: ServiceTier, text = 'hi') =>
    ai.models.generateContent({
      model: MODEL,
      contents: text,
      ...(serviceTier ? { config: { serviceTier } } : {}),
    });
  const tierOf = (res: Awaited<ReturnType<typeof ask>>) =>
    res.sdkHttpResponse?.headers?.['x-gemini-service-tier'];

  it('serves a request without a tier as standard, and says so', async () => {
    expect(tierOf(await ask())).toBe('standard');
    expect(tierOf(await ask(ServiceTier.STANDARD))).toBe('standard');
  });

  it("serves Flex after Flex's wait, scaled by the time setting (1 minute as 60 ms)", async () => {
    // Arrange: every Flex answer waits exactly one minute, scaled by 0.001.
    const started = performance.now();
    // Act
    const res = await ask(ServiceTier.FLEX);
    // Assert
    expect(tierOf(res)).toBe('flex');
    expect(res.text).toMatch(/^echo: hi/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(59);
  });

  it('counts Flex requests against the ordinary rate limit', async () => {
    // Arrange
    standIn.configure({ quotas: { [MODEL]: { rpm: 2 } } });
    await ask(ServiceTier.FLEX);
    await ask(ServiceTier.FLEX);
    // Act
    const refused = await expectApiError(() => ask());
    // Assert
    expect(refused).toMatchObject({ status: 429, quotaIds: ['GenerateRequestsPerMinutePerProjectPerModel'] });
  });

  it('sheds Flex with 503 when its capacity is full, never falling back to standard; standard is served', async () => {
    // Arrange
    standIn.configure({ serviceTiers: { flex: { capacityFull: true } } });
    // Act
    const shed = await expectApiError(() => ask(ServiceTier.FLEX));
    const standard = await ask();
    // Assert
    expect(shed).toMatchObject({ status: 503, rpcStatus: 'UNAVAILABLE' });
    expect(tierOf(standard)).toBe('standard');
  });

  it('counts a shed Flex request against the rate limit (it was admitted)', async () => {
    standIn.configure({ quotas: { [MODEL]: { rpm: 1 } }, serviceTiers: { flex: { capacityFull: true } } });
    await expectApiError(() => ask(ServiceTier.FLEX));

    expect((await expectApiError(() => ask())).status).toBe(429);
  });

  it('sheds a Flex request whose prompt carries [[flex:shed]]; the same prompt on standard is answered', async () => {
    expect((await expectApiError(() => ask(ServiceTier.FLEX, 'x [[flex:shed]]'))).status).toBe(503);
    expect(tierOf(await ask(undefined, 'x [[flex:shed]]'))).toBe('standard');
  });

  it('serves Priority up to 0.3× the limits, then as standard (not refused), and the header says which', async () => {
    // Arrange: 10 RPM, so Priority's own cap is 3 a minute.
    standIn.configure({ quotas: { [MODEL]: { rpm: 10 } } });
    // Act
    const tiers: unknown[] = [];
    for (let i = 0; i < 5; i++) tiers.push(tierOf(await ask(ServiceTier.PRIORITY)));
    // Assert
    expect(tiers).toEqual(['priority', 'priority', 'priority', 'standard', 'standard']);
  });

  it('serves Priority again once its window has room', async () => {
    standIn.configure({ quotas: { [MODEL]: { rpm: 10 } } });
    for (let i = 0; i < 3; i++) await ask(ServiceTier.PRIORITY);
    expect(tierOf(await ask(ServiceTier.PRIORITY))).toBe('standard');

    now = T0 + 60_001;

    expect(tierOf(await ask(ServiceTier.PRIORITY))).toBe('priority');
  });

  it('refuses a tier the enum does not have with 400 INVALID_ARGUMENT', async () => {
    const bad = await expectApiError(() => ask('turbo' as ServiceTier));

    expect(bad).toMatchObject({ status: 400, rpcStatus: 'INVALID_ARGUMENT' });
    expect(bad.message).toMatch(/service_tier/);
  });
});
