import { describe, expect, it } from 'vitest';
import { leadingText, orderByPrefix, prefixKey } from '../../../functions/core/prefix-order.js';

const LONG_A = 'Context A. '.repeat(400); // 4,400 bytes: 1,100 tokens by the estimate
const LONG_B = 'Context B. '.repeat(400);
const request = (system: string | undefined, text: string) => ({
  contents: [{ role: 'user', parts: [{ text }] }],
  ...(system ? { systemInstruction: { parts: [{ text: system }] } } : {}),
});

describe('ordering for the implicit cache', () => {
  it('keys a request by its first minTokens tokens of system instruction then contents', () => {
    expect(prefixKey(request(LONG_A, 'question 1'), 1024)).toBe(
      prefixKey(request(LONG_A, 'question 2'), 1024),
    );
    expect(prefixKey(request(LONG_A, 'q'), 1024)).not.toBe(prefixKey(request(LONG_B, 'q'), 1024));
    // The same text split between system instruction and contents reads the same from the start.
    expect(leadingText(request('S', 'T'))).toBe('S\nT');
  });

  it('gives no key to a request shorter than the minimum', () => {
    expect(prefixKey(request(undefined, 'short'), 1024)).toBeUndefined();
    expect(prefixKey(request(LONG_A, 'q'), 4096)).toBeUndefined();
  });

  it('stops the prefix at the first part that is not text', () => {
    const withMedia = {
      contents: [
        {
          role: 'user',
          parts: [{ text: 'look' }, { inlineData: { mimeType: 'image/png', data: 'AA' } }, { text: LONG_A }],
        },
      ],
    };
    expect(leadingText(withMedia)).toBe('look');
  });

  it('groups same-prefix items back to back where the first stood, index order within, keyless items in place', () => {
    const items = ['a0', 'b1', 'x2', 'a3', 'b4', 'a5'];
    const key = (s: string) => (s.startsWith('x') ? undefined : s[0]);
    expect(orderByPrefix(items, key)).toEqual(['a0', 'a3', 'a5', 'b1', 'b4', 'x2']);
  });
});
