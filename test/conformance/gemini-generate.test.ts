import { createPartFromBase64, GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { expectApiError } from '../fixtures/gemini/api-error.js';

const MODEL = 'gemini-2.5-flash';

describe('Gemini stand-in: generateContent, stream, countTokens (official SDK)', () => {
  let standIn: GeminiStandIn;
  let ai: GoogleGenAI;

  beforeAll(async () => {
    standIn = await startGeminiStandIn();
    // The version the product calls (functions/platform/gemini.ts); the SDK's own default is v1.
    ai = new GoogleGenAI({ apiKey: 'local', apiVersion: 'v1beta', httpOptions: { baseUrl: standIn.url } });
  });
  afterAll(() => standIn.close());
  beforeEach(() => standIn.reset());

  it('answers generateContent deterministically with the real response shape', async () => {
    // Arrange
    const prompt = 'Name three rivers in France.';
    // Act
    const first = await ai.models.generateContent({ model: MODEL, contents: prompt });
    const second = await ai.models.generateContent({ model: MODEL, contents: prompt });
    // Assert
    expect(first.text).toMatch(/^echo: Name three rivers in France\. #[0-9a-f]{8}$/);
    expect(second.text).toBe(first.text);
    const candidate = first.candidates?.[0];
    expect(candidate?.content?.role).toBe('model');
    expect(candidate?.finishReason).toBe('STOP');
    expect(candidate?.index).toBe(0);
    expect(first.usageMetadata).toEqual({
      promptTokenCount: Math.ceil(Buffer.byteLength(prompt) / 4),
      candidatesTokenCount: Math.ceil(Buffer.byteLength(first.text ?? '') / 4),
      totalTokenCount:
        Math.ceil(Buffer.byteLength(prompt) / 4) + Math.ceil(Buffer.byteLength(first.text ?? '') / 4),
    });
    expect(first.modelVersion).toBe(MODEL);
    expect(first.responseId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(first.responseId).not.toBe(second.responseId);
  });

  it('serves /v1 as well as /v1beta, and counts systemInstruction as prompt tokens', async () => {
    // Arrange
    const v1 = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: standIn.url, apiVersion: 'v1' } });
    // Act
    const response = await v1.models.generateContent({
      model: MODEL,
      contents: 'abcd',
      config: { systemInstruction: 'efghijkl', temperature: 0.2, maxOutputTokens: 1000 },
    });
    // Assert
    expect(response.text).toMatch(/^echo: abcd #/);
    expect(response.usageMetadata?.promptTokenCount).toBe(1 + 2);
  });

  it('honours maxOutputTokens with finishReason MAX_TOKENS and responseMimeType JSON', async () => {
    // Act
    const short = await ai.models.generateContent({
      model: MODEL,
      contents: 'a long enough prompt to be cut',
      config: { maxOutputTokens: 2 },
    });
    const json = await ai.models.generateContent({
      model: MODEL,
      contents: 'as json',
      config: { responseMimeType: 'application/json' },
    });
    // Assert
    expect(short.candidates?.[0]?.finishReason).toBe('MAX_TOKENS');
    expect(short.text).toBe('echo: a ');
    expect(JSON.parse(json.text ?? '')).toMatchObject({ echo: 'as json', media: 0 });
  });

  it('streams the same answer as SSE chunks the SDK parses', async () => {
    // Arrange
    const prompt = 'Stream me a story about a lighthouse keeper.';
    const whole = await ai.models.generateContent({ model: MODEL, contents: prompt });
    // Act
    const chunks: string[] = [];
    let last: unknown;
    for await (const chunk of await ai.models.generateContentStream({ model: MODEL, contents: prompt })) {
      chunks.push(chunk.text ?? '');
      last = chunk;
    }
    // Assert
    expect(chunks.length).toBe(3);
    expect(chunks.join('')).toBe(whole.text);
    expect(last).toMatchObject({
      candidates: [{ finishReason: 'STOP' }],
      usageMetadata: { totalTokenCount: whole.usageMetadata?.totalTokenCount },
    });
  });

  it('counts tokens by the documented rule: ceil(bytes / 4) per text part, 258 per image', async () => {
    // Arrange
    const image = createPartFromBase64(Buffer.from('not really a png').toString('base64'), 'image/png');
    // Act
    const text = await ai.models.countTokens({ model: MODEL, contents: 'héllo wörld' });
    const mixed = await ai.models.countTokens({
      model: MODEL,
      contents: [{ role: 'user', parts: [{ text: '12345' }, image, { text: 'abc' }] }],
    });
    // Assert
    expect(text.totalTokens).toBe(Math.ceil(Buffer.byteLength('héllo wörld') / 4));
    expect(mixed.totalTokens).toBe(2 + 258 + 1);
  });

  it('accepts an inline image part and charges 258 tokens for it', async () => {
    // Arrange
    const image = createPartFromBase64(Buffer.alloc(64, 7).toString('base64'), 'image/jpeg');
    // Act
    const response = await ai.models.generateContent({
      model: MODEL,
      contents: [{ role: 'user', parts: [{ text: 'What is in this picture?' }, image] }],
    });
    // Assert
    expect(response.text).toMatch(/^echo: What is in this picture\? \[media:1\] #[0-9a-f]{8}$/);
    expect(response.usageMetadata?.promptTokenCount).toBe(Math.ceil(24 / 4) + 258);
  });

  it('answers an unknown model with the real 404 NOT_FOUND body', async () => {
    // Act
    const error = await expectApiError(() =>
      ai.models.generateContent({ model: 'gemini-9-ultra', contents: 'hi' }),
    );
    // Assert
    expect(error.status).toBe(404);
    expect(error.rpcStatus).toBe('NOT_FOUND');
    expect(error.message).toBe(
      'models/gemini-9-ultra is not found for API version v1beta, or is not supported for generateContent. ' +
        'Call ListModels to see the list of available models and their supported methods.',
    );
  });

  it('serves only the configured models', async () => {
    // Arrange
    const custom = await startGeminiStandIn({ models: ['my-model'] });
    const client = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: custom.url } });
    try {
      // Act
      const ok = await client.models.generateContent({ model: 'my-model', contents: 'x' });
      const missing = await expectApiError(() =>
        client.models.generateContent({ model: MODEL, contents: 'x' }),
      );
      // Assert
      expect(ok.modelVersion).toBe('my-model');
      expect(missing.status).toBe(404);
    } finally {
      await custom.close();
    }
  });

  it('records what it was sent in /__standin/stats', async () => {
    // Arrange
    const prompts = ['one', 'two two', 'three three three'];
    // Act
    for (const p of prompts) await ai.models.generateContent({ model: MODEL, contents: p });
    await ai.models.countTokens({ model: MODEL, contents: 'x' });
    const stats = (await (await fetch(`${standIn.url}/__standin/stats`)).json()) as ReturnType<
      GeminiStandIn['stats']
    >;
    // Assert
    const model = stats.models[MODEL];
    const inputTokens = prompts.reduce((sum, p) => sum + Math.ceil(p.length / 4), 0);
    expect(model).toMatchObject({
      requests: 3,
      admitted: 3,
      succeeded: 3,
      rejected429: 0,
      inputTokens,
      peakRequestsPer60s: 3,
      peakAdmittedPer60s: 3,
      peakInputTokensPer60s: inputTokens,
      countTokensRequests: 1,
    });
    expect(model?.requestsPerSecond.reduce((sum, s) => sum + s.count, 0)).toBe(3);
    expect(model?.outputTokens).toBeGreaterThan(0);
  });

  it('pads an answer to the bytes a prompt asks for, and counts an answer given again', async () => {
    // Arrange
    const prompt = 'A big one [[answer-bytes:1500000]]';

    // Act
    const first = await ai.models.generateContent({ model: MODEL, contents: prompt });
    const again = await ai.models.generateContent({ model: MODEL, contents: prompt });
    await ai.models.generateContent({ model: MODEL, contents: 'another prompt' });
    const stats = (await (await fetch(`${standIn.url}/__standin/stats`)).json()) as ReturnType<
      GeminiStandIn['stats']
    >;

    // Assert
    expect(Buffer.byteLength(first.text ?? '')).toBe(1_500_000);
    expect(again.text).toBe(first.text);
    expect(stats.models[MODEL]).toMatchObject({ succeeded: 3, answeredAgain: 1 });
    expect(stats.models[MODEL]?.answeredAgainDetails).toEqual([
      { prompt: prompt.slice(0, 60), firstMs: expect.any(Number), againMs: expect.any(Number) },
    ]);
  });

  it('never answers a prompt marked [[fault:hang]]: the client deadline ends it', async () => {
    // Arrange
    const started = Date.now();

    // Act
    const error = await ai.models
      .generateContent({
        model: MODEL,
        contents: 'wait forever [[fault:hang]]',
        config: { httpOptions: { timeout: 1500 } },
      })
      .then(
        () => undefined,
        (err: Error) => err,
      );
    const stats = (await (await fetch(`${standIn.url}/__standin/stats`)).json()) as ReturnType<
      GeminiStandIn['stats']
    >;

    // Assert
    expect(error).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(stats.models[MODEL]).toMatchObject({ succeeded: 0, answeredAgain: 0, faults: { hang: 1 } });
  });
});

describe('Gemini stand-in: bad input gets the real codes and bodies (raw HTTP)', () => {
  let standIn: GeminiStandIn;
  const headers = { 'content-type': 'application/json', 'x-goog-api-key': 'local' };

  beforeAll(async () => {
    standIn = await startGeminiStandIn();
  });
  afterAll(() => standIn.close());

  async function post(path: string, body: string, extraHeaders: Record<string, string> = headers) {
    const response = await fetch(`${standIn.url}${path}`, { method: 'POST', headers: extraHeaders, body });
    return {
      status: response.status,
      type: response.headers.get('content-type'),
      text: await response.text(),
    };
  }

  it('answers invalid JSON with 400 INVALID_ARGUMENT "Invalid JSON payload received..."', async () => {
    // Act
    const r = await post(`/v1beta/models/${MODEL}:generateContent`, '{"contents": [');
    // Assert
    expect(r.status).toBe(400);
    const body = JSON.parse(r.text);
    expect(body.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
    expect(body.error.message).toMatch(/^Invalid JSON payload received\./);
  });

  it('answers missing or empty contents with 400 "contents is not specified"', async () => {
    // Act
    const missing = await post(`/v1beta/models/${MODEL}:generateContent`, '{}');
    const empty = await post(`/v1beta/models/${MODEL}:generateContent`, '{"contents": []}');
    const emptyParts = await post(
      `/v1beta/models/${MODEL}:generateContent`,
      '{"contents": [{"role":"user","parts":[]}]}',
    );
    // Assert
    for (const r of [missing, empty]) {
      expect(r.status).toBe(400);
      expect(JSON.parse(r.text)).toEqual({
        error: {
          code: 400,
          message: '* GenerateContentRequest.contents: contents is not specified\n',
          status: 'INVALID_ARGUMENT',
        },
      });
    }
    expect(emptyParts.status).toBe(400);
    expect(JSON.parse(emptyParts.text).error.message).toContain('contents.parts must not be empty');
  });

  it('answers an unknown route with the front end HTML 404', async () => {
    // Act
    const r = await post('/v1beta/nothing/here', '{}');
    const get = await fetch(`${standIn.url}/v2/models`, { headers });
    // Assert
    expect(r.status).toBe(404);
    expect(r.type).toContain('text/html');
    expect(get.status).toBe(404);
  });

  it('answers a request without an API key with 403 PERMISSION_DENIED', async () => {
    // Act
    const r = await post(`/v1beta/models/${MODEL}:generateContent`, '{"contents":"x"}', {
      'content-type': 'application/json',
    });
    // Assert
    expect(r.status).toBe(403);
    expect(JSON.parse(r.text).error.status).toBe('PERMISSION_DENIED');
  });

  it('rejects a bad config patch on /__standin/config with 400 and keeps the old config', async () => {
    // Act
    const bad = await post('/__standin/config', '{"faults": {"internalShare": 3}}', {});
    const good = await post('/__standin/config', '{"quotas": {"gemini-2.5-pro": {"rpm": 5}}}', {});
    // Assert
    expect(bad.status).toBe(400);
    expect(good.status).toBe(200);
    expect(JSON.parse(good.text).quotas['gemini-2.5-pro']).toEqual({ rpm: 5 });
    expect(standIn.config().faults.internalShare).toBe(0);
  });
});
