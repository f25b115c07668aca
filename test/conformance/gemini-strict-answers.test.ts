import { FinishReason, GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';

const FLASH = 'gemini-2.5-flash';
const LITE = 'gemini-2.5-flash-lite';
const PRO = 'gemini-2.5-pro';

describe('Gemini stand-in, strict profile: realistic answers (official SDK)', () => {
  let standIn: GeminiStandIn;
  let ai: GoogleGenAI;

  beforeAll(async () => {
    standIn = await startGeminiStandIn({ profile: 'strict', seed: 9 });
    ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: standIn.url } });
  });
  afterAll(() => standIn.close());
  beforeEach(() => {
    standIn.configure({ profile: 'strict' });
    standIn.reset();
  });

  it('makes 2.5 Flash and Pro think by default: thoughtsTokenCount is in the total, Flash-Lite does not think', async () => {
    // Act
    const flash = await ai.models.generateContent({ model: FLASH, contents: 'Why is the sky blue?' });
    const lite = await ai.models.generateContent({ model: LITE, contents: 'Why is the sky blue?' });
    // Assert
    const usage = flash.usageMetadata;
    expect(usage?.thoughtsTokenCount).toBe(256);
    expect(usage?.totalTokenCount).toBe(
      (usage?.promptTokenCount ?? 0) + (usage?.candidatesTokenCount ?? 0) + 256,
    );
    expect(usage?.promptTokensDetails).toEqual([{ modality: 'TEXT', tokenCount: usage?.promptTokenCount }]);
    expect(usage?.candidatesTokensDetails).toEqual([
      { modality: 'TEXT', tokenCount: usage?.candidatesTokenCount },
    ]);
    expect(flash.text).toMatch(/^echo: Why is the sky blue\?/);
    expect(lite.usageMetadata?.thoughtsTokenCount).toBeUndefined();
    expect(standIn.stats().models[FLASH]?.outputTokens).toBe((usage?.candidatesTokenCount ?? 0) + 256);
  });

  it('honours thinkingBudget (0 turns Flash off, not Pro) and sends thought summaries the SDK leaves out of text', async () => {
    // Act
    const off = await ai.models.generateContent({
      model: FLASH,
      contents: 'q',
      config: { thinkingConfig: { thinkingBudget: 0 } },
    });
    const capped = await ai.models.generateContent({
      model: FLASH,
      contents: 'q',
      config: { thinkingConfig: { thinkingBudget: 100, includeThoughts: true } },
    });
    const pro = await ai.models.generateContent({
      model: PRO,
      contents: 'q',
      config: { thinkingConfig: { thinkingBudget: 0 } },
    });
    // Assert
    expect(off.usageMetadata?.thoughtsTokenCount).toBeUndefined();
    expect(capped.usageMetadata?.thoughtsTokenCount).toBe(100);
    expect(capped.candidates?.[0]?.content?.parts?.[0]).toMatchObject({ thought: true });
    expect(capped.text).toMatch(/^echo: q #/);
    expect(pro.usageMetadata?.thoughtsTokenCount).toBe(256);
  });

  it('lets thinking eat maxOutputTokens: a candidate with MAX_TOKENS and no parts', async () => {
    // Act
    const eaten = await ai.models.generateContent({
      model: FLASH,
      contents: 'Write a long essay.',
      config: { maxOutputTokens: 200 },
    });
    const short = await ai.models.generateContent({
      model: FLASH,
      contents: 'Write a long essay.',
      config: { maxOutputTokens: 260 },
    });
    // Assert
    const candidate = eaten.candidates?.[0];
    expect(candidate?.finishReason).toBe(FinishReason.MAX_TOKENS);
    expect(candidate?.content).toEqual({ role: 'model' });
    expect(eaten.text).toBeUndefined();
    expect(eaten.usageMetadata?.thoughtsTokenCount).toBe(200);
    expect(eaten.usageMetadata?.candidatesTokenCount).toBeUndefined();
    expect(short.candidates?.[0]?.finishReason).toBe(FinishReason.MAX_TOKENS);
    expect(short.usageMetadata?.candidatesTokenCount).toBeLessThanOrEqual(4);
  });

  it('blocks a prompt marked [[block:SAFETY]]: promptFeedback, no candidates, usage of the prompt only', async () => {
    // Act
    const blocked = await ai.models.generateContent({ model: LITE, contents: 'bad [[block:SAFETY]]' });
    // Assert
    expect(blocked.candidates).toBeUndefined();
    expect(blocked.promptFeedback?.blockReason).toBe('SAFETY');
    expect(blocked.text).toBeUndefined();
    expect(blocked.usageMetadata?.candidatesTokenCount).toBeUndefined();
    expect(blocked.usageMetadata?.totalTokenCount).toBe(blocked.usageMetadata?.promptTokenCount);
  });

  it('sends candidates without parts and finish reasons other than STOP on markers', async () => {
    // Act
    const noParts = await ai.models.generateContent({ model: LITE, contents: 'x [[no-parts]]' });
    const safety = await ai.models.generateContent({ model: LITE, contents: 'x [[finish:SAFETY]]' });
    const recitation = await ai.models.generateContent({ model: LITE, contents: 'x [[finish:RECITATION]]' });
    const cut = await ai.models.generateContent({
      model: LITE,
      contents: 'a longer prompt [[finish:MAX_TOKENS]]',
    });
    // Assert
    expect(noParts.candidates?.[0]).toEqual({ content: { role: 'model' }, finishReason: 'STOP', index: 0 });
    expect(noParts.text).toBeUndefined();
    expect(safety.candidates?.[0]?.finishReason).toBe(FinishReason.SAFETY);
    expect(safety.candidates?.[0]?.content).toBeUndefined();
    expect(safety.candidates?.[0]?.safetyRatings?.some((r) => r.blocked)).toBe(true);
    expect(recitation.candidates?.[0]).toMatchObject({ finishReason: FinishReason.RECITATION });
    expect(recitation.candidates?.[0]?.content).toBeUndefined();
    expect(cut.candidates?.[0]?.finishReason).toBe(FinishReason.MAX_TOKENS);
    expect(cut.text?.length).toBeGreaterThan(0);
    expect(cut.text).not.toMatch(/#[0-9a-f]{8}$/);
  });

  it('reports cached and thinking tokens a prompt marks, and a share of long prompts served from the cache', async () => {
    // Arrange
    const long = 'a'.repeat(4000);
    // Act
    const marked = await ai.models.generateContent({
      model: LITE,
      contents: 'x [[cached:3]] [[thoughts:7]]',
    });
    standIn.configure({ answers: { cachedShare: 1 } });
    const implicit = await ai.models.generateContent({ model: LITE, contents: long });
    const short = await ai.models.generateContent({ model: LITE, contents: 'short' });
    // Assert
    expect(marked.usageMetadata).toMatchObject({ cachedContentTokenCount: 3, thoughtsTokenCount: 7 });
    expect(marked.usageMetadata?.cacheTokensDetails).toEqual([{ modality: 'TEXT', tokenCount: 3 }]);
    expect(implicit.usageMetadata?.cachedContentTokenCount).toBe(625);
    expect(short.usageMetadata?.cachedContentTokenCount).toBeUndefined();
  });

  it('draws odd answers from shares, reproducibly after a reset', async () => {
    // Arrange
    standIn.configure({
      answers: {
        blockedShare: 0.2,
        noPartsShare: 0.2,
        maxTokensShare: 0.2,
        safetyShare: 0.1,
        recitationShare: 0.1,
      },
    });
    const kinds = async () => {
      const out: string[] = [];
      for (let i = 0; i < 40; i++) {
        const r = await ai.models.generateContent({ model: LITE, contents: `prompt ${i}` });
        const c = r.candidates?.[0];
        out.push(
          r.promptFeedback?.blockReason
            ? 'blocked'
            : !c?.content?.parts
              ? `${c?.finishReason}-empty`
              : `${c.finishReason}`,
        );
      }
      return out;
    };
    // Act
    const first = await kinds();
    standIn.reset();
    const again = await kinds();
    // Assert
    expect(new Set(first)).toEqual(
      new Set(['blocked', 'STOP-empty', 'MAX_TOKENS', 'SAFETY-empty', 'RECITATION-empty', 'STOP']),
    );
    expect(again).toEqual(first);
  });

  it('streams an answer without text as one chunk, and a thinking answer with its usage on the last chunk', async () => {
    // Act
    const blocked = [];
    for await (const c of await ai.models.generateContentStream({
      model: LITE,
      contents: 'x [[block:OTHER]]',
    }))
      blocked.push(c);
    const thinking = [];
    for await (const c of await ai.models.generateContentStream({
      model: FLASH,
      contents: 'tell me a story',
    }))
      thinking.push(c);
    // Assert
    expect(blocked).toHaveLength(1);
    expect(blocked[0]?.promptFeedback?.blockReason).toBe('OTHER');
    expect(thinking.length).toBeGreaterThan(1);
    expect(thinking.map((c) => c.text).join('')).toMatch(/^echo: tell me a story #/);
    expect(thinking.at(-1)?.usageMetadata?.thoughtsTokenCount).toBe(256);
  });

  it('gives batch lines the same shapes: thinking by default, markers', async () => {
    // Arrange
    standIn.configure({ batch: { pendingMs: 10, runningMs: 50 } });
    const created = await ai.batches.create({
      model: FLASH,
      src: [
        { contents: [{ role: 'user', parts: [{ text: 'plain' }] }] },
        { contents: [{ role: 'user', parts: [{ text: 'blocked [[block:SAFETY]]' }] }] },
      ],
      config: { displayName: 'shapes' },
    });
    // Act
    let job = created;
    for (let i = 0; i < 400 && job.state !== 'JOB_STATE_SUCCEEDED'; i++) {
      await new Promise((r) => setTimeout(r, 25));
      job = await ai.batches.get({ name: created.name ?? '' });
    }
    // Assert
    const [plain, blocked] = job.dest?.inlinedResponses ?? [];
    expect(plain?.response?.usageMetadata?.thoughtsTokenCount).toBe(256);
    expect(blocked?.response?.promptFeedback?.blockReason).toBe('SAFETY');
    expect(blocked?.response?.candidates).toBeUndefined();
  });
});
