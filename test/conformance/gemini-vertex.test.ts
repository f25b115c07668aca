import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { classifyFailure } from '../../functions/core/outcome.js';
import { createGeminiClient, type GeminiCallError } from '../../functions/platform/gemini/client.js';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { writeVertexAdc } from '../../infra/local/vertex-adc.js';
import { expectApiError } from '../fixtures/gemini/api-error.js';

// The stand-in's Vertex AI mode, driven by the official SDK with `vertexai: true` and Application
// Default Credentials (an external_account file whose token exchange is the stand-in's STS): the
// paths js-genai builds, bearer auth, Vertex's response fields, and the shared pool's bare 429.

const MODEL = 'gemini-2.5-flash';
const PROJECT = 'fanout-vertex-conf';
const LOCATION = 'us-central1';
const SUBJECT = 'local-subject-token-for-conformance';

describe('Gemini stand-in: Vertex AI mode (official SDK, ADC)', () => {
  let standIn: GeminiStandIn;
  let dir: string;
  const vertexSdk = (project = PROJECT) =>
    new GoogleGenAI({ vertexai: true, project, location: LOCATION, httpOptions: { baseUrl: standIn.url } });

  beforeAll(async () => {
    standIn = await startGeminiStandIn({ vertex: { project: PROJECT, subjectToken: SUBJECT } });
    dir = mkdtempSync(join(tmpdir(), 'vertex-adc-'));
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', writeVertexAdc(dir, standIn.url, SUBJECT));
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await standIn.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    standIn.reset();
    standIn.configure({ vertex: { pool: { rpm: null } } });
  });

  it('answers generateContent at the Vertex path with a bearer token from ADC, with Vertex fields', async () => {
    // Arrange
    const seen: Array<{ url: string; auth: string | null; key: string | null }> = [];
    const spy: typeof fetch = async (input, init) => {
      const headers = new Headers(init?.headers);
      seen.push({
        url: String(input),
        auth: headers.get('authorization'),
        key: headers.get('x-goog-api-key'),
      });
      return fetch(input, init);
    };
    const ai = new GoogleGenAI({
      vertexai: true,
      project: PROJECT,
      location: LOCATION,
      httpOptions: { baseUrl: standIn.url, fetch: spy } as never,
    });
    // Act
    const answer = await ai.models.generateContent({ model: MODEL, contents: 'Name a river.' });
    // Assert
    expect(answer.text).toMatch(/^echo: Name a river\. #/);
    expect(answer.createTime).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(answer.usageMetadata?.trafficType).toBe('ON_DEMAND');
    const call = seen.find((s) => s.url.includes(':generateContent'));
    expect(new URL(call!.url).pathname).toBe(
      `/v1beta1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/${MODEL}:generateContent`,
    );
    expect(call?.auth).toMatch(/^Bearer ya29\.local-/);
    expect(call?.key).toBeNull();
  });

  it('serves countTokens and the product client in Vertex mode', async () => {
    // Arrange
    const client = createGeminiClient({
      apiKey: '',
      baseUrl: standIn.url,
      timeoutMs: 10_000,
      vertex: { project: PROJECT, location: LOCATION },
    });
    const request = { contents: [{ role: 'user', parts: [{ text: 'abcdefgh' }] }] };
    // Act
    const count = await client.countTokens(MODEL, request);
    const result = await client.generate(MODEL, request);
    // Assert
    expect(count).toBe(2);
    expect(result.usageMetadata?.promptTokenCount).toBe(2);
  });

  it('refuses a call without a token (401), with an API key only (401), with a forged token (401)', async () => {
    // Arrange
    const url = `${standIn.url}/v1beta1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/${MODEL}:generateContent`;
    const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });
    const post = (headers: Record<string, string>) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    // Act
    const bare = await post({});
    const keyed = await post({ 'x-goog-api-key': 'some-key' });
    const forged = await post({ authorization: 'Bearer ya29.forged' });
    // Assert
    for (const res of [bare, keyed, forged]) {
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { status: string } }).error.status).toBe('UNAUTHENTICATED');
    }
  });

  it("refuses another project's resource with 403 PERMISSION_DENIED", async () => {
    // Act
    const error = await expectApiError(() =>
      vertexSdk('someone-elses-project').models.generateContent({ model: MODEL, contents: 'hi' }),
    );
    // Assert
    expect(error.status).toBe(403);
    expect(error.rpcStatus).toBe('PERMISSION_DENIED');
    expect(error.message).toContain('aiplatform.endpoints.predict');
  });

  it('exchanges only its own subject token: ADC with another one gets no access token', async () => {
    // Arrange
    const other = mkdtempSync(join(tmpdir(), 'vertex-adc-'));
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', writeVertexAdc(other, standIn.url, 'not-the-subject-token'));
    // Act
    const outcome = await vertexSdk()
      .models.generateContent({ model: MODEL, contents: 'hi' })
      .then(
        () => 'answered',
        (e: Error) => e.message,
      );
    // Assert
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', join(dir, 'adc.json'));
    rmSync(other, { recursive: true, force: true });
    expect(outcome).toMatch(/invalid_grant/);
  });

  it("throttles by the shared pool's load with Vertex's bare 429, which the product reads as a minute's 429", async () => {
    // Arrange: a pool of 60 requests a minute, counted over 10 s: 10 requests fit.
    standIn.configure({ vertex: { pool: { rpm: 60, windowMs: 10_000, swing: 0 } } });
    const ai = vertexSdk();
    // Act
    for (let i = 0; i < 10; i++) await ai.models.generateContent({ model: MODEL, contents: `q${i}` });
    const error = await expectApiError(() =>
      ai.models.generateContent({ model: MODEL, contents: 'one more' }),
    );
    const client = createGeminiClient({
      apiKey: '',
      baseUrl: standIn.url,
      timeoutMs: 10_000,
      vertex: { project: PROJECT, location: LOCATION },
    });
    const thrown = (await client
      .generate(MODEL, { contents: [{ role: 'user', parts: [{ text: 'again' }] }] })
      .catch((e: GeminiCallError) => e)) as GeminiCallError;
    // Assert
    expect(error).toMatchObject({ status: 429, rpcStatus: 'RESOURCE_EXHAUSTED', quotaIds: [] });
    expect(error.message).toMatch(/^Resource exhausted\. Please try again later\./);
    expect(error.retryDelay).toBeUndefined();
    expect(classifyFailure(thrown.httpStatus, thrown.body)).toMatchObject({
      kind: 'quota-minute',
      hit: { limit: 'unknown' },
    });
    expect(standIn.stats().models[MODEL]?.rejected429).toBe(2);
  });

  it('leaves Vertex paths unknown when Vertex mode is off', async () => {
    // Arrange
    const plain = await startGeminiStandIn();
    // Act
    const res = await fetch(
      `${plain.url}/v1beta1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/${MODEL}:generateContent`,
      { method: 'POST', headers: { authorization: 'Bearer x', 'x-goog-api-key': 'k' }, body: '{}' },
    );
    await plain.close();
    // Assert
    expect(res.status).toBe(404);
  });
});
