import { describe, expect, it } from 'vitest';
import { estimateInputTokens } from '../../../functions/core/tokens.js';

/** A PNG's signature and IHDR chunk (the estimate reads no further; the CRC is left zero). */
const png = (width: number, height: number) => {
  const bytes = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(bytes);
  bytes.writeUInt32BE(13, 8);
  bytes.write('IHDR', 12, 'latin1');
  bytes.writeUInt32BE(width, 16);
  bytes.writeUInt32BE(height, 20);
  bytes.set([8, 6, 0, 0, 0], 24);
  return bytes;
};

const text = (t: string) => ({ contents: [{ role: 'user', parts: [{ text: t }] }] });

describe('estimateInputTokens', () => {
  it('charges ceil(bytes / 4) per text part', () => {
    expect(estimateInputTokens(text(''))).toBe(0);
    expect(estimateInputTokens(text('a'))).toBe(1);
    expect(estimateInputTokens(text('abcd'))).toBe(1);
    expect(estimateInputTokens(text('abcde'))).toBe(2);
  });

  it('rounds up per part, not per request', () => {
    const request = { contents: [{ parts: [{ text: 'a' }, { text: 'b' }] }, { parts: [{ text: 'c' }] }] };

    expect(estimateInputTokens(request)).toBe(3);
  });

  it('counts UTF-8 bytes, not characters', () => {
    // "é" is 2 bytes, "日本" 6 bytes, an emoji 4 bytes.
    expect(estimateInputTokens(text('éé'))).toBe(1);
    expect(estimateInputTokens(text('日本'))).toBe(2);
    expect(estimateInputTokens(text('😀😀😀'))).toBe(3);
  });

  it('counts each inline part by its medium: an image by its tiles, text media by its bytes', () => {
    const request = {
      contents: [
        {
          parts: [
            { text: 'abcd' },
            { inlineData: { mimeType: 'image/png', data: png(1600, 900).toString('base64') } },
            { inlineData: { mimeType: 'image/png', data: png(200, 100).toString('base64') } },
            { inlineData: { mimeType: 'text/plain', data: Buffer.from('x'.repeat(40)).toString('base64') } },
          ],
        },
      ],
    };

    expect(estimateInputTokens(request)).toBe(1 + 3 * 2 * 258 + 258 + 10);
  });

  it('charges fileData parts and media refs the planning default of their type', () => {
    const request = {
      contents: [
        {
          parts: [
            { text: 'abcd' },
            {
              fileData: {
                mimeType: 'application/pdf',
                fileUri: 'https://generativelanguage.googleapis.com/v1beta/files/x',
              },
            },
            { fileData: { fileUri: 'https://generativelanguage.googleapis.com/v1beta/files/y' } },
          ],
        },
      ],
    };
    const media = [
      { url: 'https://example.com/a.png' },
      { gcsUri: 'gs://b/c', mimeType: 'video/mp4' },
      { gcsUri: 'gs://b/d.wav' },
      { gcsUri: 'gs://b/e' },
    ];

    expect(estimateInputTokens(request)).toBe(1 + 10 * 258 + 4 * 258);
    expect(estimateInputTokens(request, media)).toBe(
      1 + 10 * 258 + 4 * 258 + 4 * 258 + 60 * 263 + 60 * 32 + 4 * 258,
    );
  });

  it('counts the system instruction', () => {
    const request = { ...text('abcd'), systemInstruction: { parts: [{ text: 'x'.repeat(9) }] } };

    expect(estimateInputTokens(request)).toBe(1 + 3);
  });
});
