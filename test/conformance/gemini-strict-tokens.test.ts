import { createPartFromBase64, createPartFromUri, GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { expectApiError } from '../fixtures/gemini/api-error.js';

const MODEL = 'gemini-2.5-flash-lite';

/** The product's estimator (functions/core/tokens.ts): what the stand-in's strict count must not be. */
const estimate = (text: string) => Math.ceil(Buffer.byteLength(text) / 4);

/** The first bytes of a PNG: signature and IHDR with the given size (all the rule reads). */
function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(25);
  ihdr.writeUInt32BE(13, 0);
  ihdr.write('IHDR', 4, 'latin1');
  ihdr.writeUInt32BE(width, 8);
  ihdr.writeUInt32BE(height, 12);
  ihdr.writeUInt8(8, 16);
  ihdr.writeUInt8(2, 17);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    ihdr,
    Buffer.alloc(64),
  ]);
}

/** A JPEG's first segments: SOI, an APP0 segment, then a baseline frame header with the size. */
function jpegHeader(width: number, height: number): Buffer {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, ...Buffer.from('JFIF\0'), 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  const sof = Buffer.alloc(19);
  sof.writeUInt16BE(0xffc0, 0);
  sof.writeUInt16BE(17, 2);
  sof.writeUInt8(8, 4);
  sof.writeUInt16BE(height, 5);
  sof.writeUInt16BE(width, 7);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof, Buffer.alloc(64)]);
}

/** A PCM WAV file of `seconds` at 16,000 bytes a second. */
function wav(seconds: number): Buffer {
  const data = 16_000 * seconds;
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + data, 4);
  header.write('WAVEfmt ', 8, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(16_000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(data, 40);
  return Buffer.concat([header, Buffer.alloc(data)]);
}

/** A PDF whose page tree holds `pages` pages (uncompressed objects, as a page count reads them). */
function pdf(pages: number): Buffer {
  const objects = Array.from(
    { length: pages },
    (_, i) => `${i + 3} 0 obj << /Type /Page /Parent 2 0 R >> endobj`,
  );
  return Buffer.from(
    `%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Count ${pages} >> endobj\n${objects.join('\n')}\n%%EOF\n`,
  );
}

describe('Gemini stand-in, strict profile: the token rule per modality (official SDK)', () => {
  let standIn: GeminiStandIn;
  let ai: GoogleGenAI;

  beforeAll(async () => {
    standIn = await startGeminiStandIn({ profile: 'strict' });
    ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: standIn.url } });
  });
  afterAll(() => standIn.close());
  beforeEach(() => {
    standIn.configure({ profile: 'strict', quotas: { [MODEL]: { rpm: null, tpm: null, rpd: null } } });
    standIn.reset();
  });

  /** promptTokenCount of a generateContent, and countTokens of the same contents. */
  async function counted(contents: Parameters<GoogleGenAI['models']['countTokens']>[0]['contents']) {
    const answer = await ai.models.generateContent({ model: MODEL, contents });
    const count = await ai.models.countTokens({ model: MODEL, contents });
    return { usage: answer.usageMetadata, count };
  }

  it('counts Latin text at 3.2 characters a token: 25% over bytes / 4, in usage, countTokens and TPM alike', async () => {
    // Arrange
    const prompt = 'a'.repeat(4000);
    standIn.configure({ quotas: { [MODEL]: { tpm: 2 * 1250 - 1 } } });
    // Act
    const { usage, count } = await counted(prompt);
    const second = await expectApiError(() => ai.models.generateContent({ model: MODEL, contents: prompt }));
    // Assert
    expect(estimate(prompt)).toBe(1000);
    expect(usage?.promptTokenCount).toBe(1250);
    expect(count.totalTokens).toBe(1250);
    expect(usage?.promptTokensDetails).toEqual([{ modality: 'TEXT', tokenCount: 1250 }]);
    expect(second).toMatchObject({
      status: 429,
      quotaIds: ['GenerateContentPaidTierInputTokensPerModelPerMinute'],
    });
    expect(standIn.stats().models[MODEL]?.inputTokens).toBe(1250);
  });

  it('counts CJK at a token a character and other scripts by their own rule', async () => {
    // Arrange
    const chinese = '你好世界'.repeat(100);
    const russian = 'привет мир '.repeat(40);
    // Act
    const zh = await counted(chinese);
    const ru = await counted(russian);
    // Assert
    expect(estimate(chinese)).toBe(300);
    expect(zh.count.totalTokens).toBe(400);
    expect(zh.usage?.promptTokenCount).toBe(400);
    // 360 Cyrillic letters at 2 a token, 80 spaces at 3.2 a token.
    expect(ru.count.totalTokens).toBe(Math.ceil(360 / 2 + 80 / 3.2));
  });

  it('counts images by their size in 768-pixel tiles, read from PNG and JPEG headers or guessed from bytes', async () => {
    // Arrange
    const part = (bytes: Buffer, mimeType: string) =>
      createPartFromBase64(bytes.toString('base64'), mimeType);
    // Act
    const small = await counted([part(pngHeader(300, 200), 'image/png')]);
    const png = await counted([part(pngHeader(1000, 800), 'image/png')]);
    const jpeg = await counted([part(jpegHeader(2000, 1000), 'image/jpeg')]);
    const unreadable = await counted([part(Buffer.alloc(1_000_000, 7), 'image/jpeg')]);
    // Assert
    expect(small.count.totalTokens).toBe(258);
    expect(png.count.totalTokens).toBe(2 * 2 * 258);
    expect(jpeg.count.totalTokens).toBe(3 * 2 * 258);
    expect(jpeg.usage?.promptTokensDetails).toEqual([{ modality: 'IMAGE', tokenCount: 6 * 258 }]);
    // 1 MB at half a byte a pixel: a 1,414-pixel square, 2 × 2 tiles.
    expect(unreadable.count.totalTokens).toBe(4 * 258);
  });

  it('counts PDFs by page, audio at 32 and video at 263 tokens a second, per modality', async () => {
    // Arrange
    const part = (bytes: Buffer, mimeType: string) =>
      createPartFromBase64(bytes.toString('base64'), mimeType);
    // Act
    const doc = await counted([part(pdf(3), 'application/pdf')]);
    const audio = await counted([part(wav(2), 'audio/wav')]);
    const video = await counted([part(Buffer.alloc(500_000), 'video/mp4')]);
    const mixed = await counted([
      'describe',
      part(wav(1), 'audio/wav'),
      part(pngHeader(100, 100), 'image/png'),
    ]);
    // Assert
    expect(doc.count.totalTokens).toBe(3 * 258);
    expect(doc.usage?.promptTokensDetails).toEqual([{ modality: 'DOCUMENT', tokenCount: 774 }]);
    expect(audio.count.totalTokens).toBe(64);
    // 500 kB at 250 kB a second: 2 s.
    expect(video.count.totalTokens).toBe(2 * 263);
    expect(mixed.usage?.promptTokensDetails).toEqual([
      { modality: 'TEXT', tokenCount: 3 },
      { modality: 'IMAGE', tokenCount: 258 },
      { modality: 'AUDIO', tokenCount: 32 },
    ]);
    expect(mixed.count.totalTokens).toBe(3 + 258 + 32);
  });

  it('counts an uploaded image by the size its header gives', async () => {
    // Arrange
    standIn.configure({ files: { processingMs: 0 } });
    const file = await ai.files.upload({
      file: new Blob([pngHeader(1600, 700)], { type: 'image/png' }),
      config: { mimeType: 'image/png' },
    });
    // Act
    const { usage, count } = await counted([createPartFromUri(file.uri ?? '', 'image/png'), 'what is this?']);
    // Assert
    expect(count.totalTokens).toBe(3 * 1 * 258 + Math.ceil(13 / 3.2));
    expect(usage?.promptTokenCount).toBe(count.totalTokens);
  });

  it('multiplies every modality by the global skew, both ways', async () => {
    // Arrange
    const contents = [
      'a'.repeat(4000),
      createPartFromBase64(pngHeader(300, 300).toString('base64'), 'image/png'),
    ];
    // Act
    standIn.configure({ tokens: { skew: 1.3 } });
    const high = await counted(contents);
    standIn.configure({ tokens: { skew: 0.7 } });
    const low = await counted(contents);
    // Assert
    expect(high.count.totalTokens).toBe(Math.ceil(1250 * 1.3) + Math.ceil(258 * 1.3));
    expect(high.usage?.promptTokenCount).toBe(high.count.totalTokens);
    expect(low.count.totalTokens).toBe(Math.ceil(1250 * 0.7) + Math.ceil(258 * 0.7));
  });

  it('keeps the estimator rule under the ideal profile, and a profile patch sets every knob of it', async () => {
    // Arrange
    const prompt = '你好 hello';
    const post = (path: string, body: unknown) =>
      fetch(`${standIn.url}${path}`, {
        method: 'POST',
        headers: { 'x-goog-api-key': 'local' },
        body: JSON.stringify(body),
      }).then((r) => r.json() as Promise<Record<string, Record<string, unknown>>>);
    // The SDK drops countTokens' promptTokensDetails: read the REST answer.
    const countTokens = () =>
      post(`/v1beta/models/${MODEL}:countTokens`, {
        contents: [{ role: 'user', parts: [{ text: prompt }] }],
      });
    // Act
    const ideal = await post('/__standin/config', { profile: 'ideal' });
    const idealCount = await countTokens();
    const strict = await post('/__standin/config', { profile: 'strict', tokens: { latinCharsPerToken: 2 } });
    const strictCount = await countTokens();
    // Assert
    expect(ideal.tokens).toMatchObject({ rule: 'estimate', skew: 1 });
    expect(ideal.answers).toMatchObject({ thinkingModels: [], tokenDetails: false });
    expect(idealCount.totalTokens).toBe(estimate(prompt));
    expect(idealCount.promptTokensDetails).toBeUndefined();
    expect(strict.profile).toBe('strict');
    expect(strict.tokens).toMatchObject({ rule: 'modality', latinCharsPerToken: 2 });
    expect(strict.quota).toMatchObject({ dayWindow: 'pacific' });
    expect(strictCount.totalTokens).toBe(2 + Math.ceil(6 / 2));
    expect(strictCount.promptTokensDetails).toEqual([{ modality: 'TEXT', tokenCount: 5 }]);
  });
});
