import { describe, expect, it } from 'vitest';
import { estimateInputTokens, TOKENS_PER_MEDIA_PART } from '../../../functions/core/tokens.js';

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

  it('charges 258 per inline or file part and per media ref', () => {
    const request = {
      contents: [
        {
          parts: [
            { text: 'abcd' },
            { inlineData: { mimeType: 'image/png', data: 'AAAA' } },
            { fileData: { fileUri: 'https://generativelanguage.googleapis.com/v1beta/files/x' } },
          ],
        },
      ],
    };

    expect(estimateInputTokens(request)).toBe(1 + 2 * TOKENS_PER_MEDIA_PART);
    expect(estimateInputTokens(request, [{ url: 'https://example.com/a.png' }, { gcsUri: 'gs://b/c' }])).toBe(
      1 + 4 * 258,
    );
  });

  it('counts the system instruction', () => {
    const request = { ...text('abcd'), systemInstruction: { parts: [{ text: 'x'.repeat(9) }] } };

    expect(estimateInputTokens(request)).toBe(1 + 3);
  });
});
