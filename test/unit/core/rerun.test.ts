import { describe, expect, it } from 'vitest';
import type { NewItem } from '../../../functions/core/jobs.js';
import {
  canonicalJson,
  changedItems,
  needsRerun,
  requestHash,
  rerunItems,
} from '../../../functions/core/rerun.js';

const item = (index: number, key: string, text: string): NewItem => ({
  id: String(index).padStart(9, '0'),
  index,
  key,
  request: { contents: [{ role: 'user', parts: [{ text }] }] },
  estimatedTokens: 3,
});

describe('requestHash', () => {
  it('is the same for the same request written with its keys in another order', () => {
    const a = {
      request: { contents: [{ role: 'user', parts: [{ text: 'x' }] }], generationConfig: { a: 1, b: 2 } },
    };
    const b = {
      request: { generationConfig: { b: 2, a: 1 }, contents: [{ parts: [{ text: 'x' }], role: 'user' }] },
    };

    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(requestHash(a)).toBe(requestHash(b));
  });

  it('differs when the text, the config or the media differ', () => {
    const base = item(0, 'a', 'x');

    expect(requestHash(item(0, 'a', 'y'))).not.toBe(requestHash(base));
    expect(
      requestHash({ ...base, request: { ...base.request, generationConfig: { temperature: 0 } } }),
    ).not.toBe(requestHash(base));
    expect(requestHash({ ...base, media: [{ url: 'https://example.com/a.png' }] })).not.toBe(
      requestHash(base),
    );
  });
});

describe('needsRerun', () => {
  it('re-runs items without an answer only', () => {
    expect(needsRerun({ state: 'failed' })).toBe(true);
    expect(needsRerun({ state: 'cancelled' })).toBe(true);
    expect(needsRerun({ state: 'succeeded' })).toBe(false);
  });
});

describe('changedItems', () => {
  it('keeps the lines whose request changed by key, and new keys, in their order', () => {
    const originals = [item(0, 'a', 'same'), item(1, 'b', 'old [[fault:400]]'), item(2, 'c', 'same too')].map(
      (i) => ({ key: i.key, hash: requestHash(i) }),
    );
    const next = [item(0, 'c', 'same too'), item(1, 'b', 'old'), item(2, 'a', 'same'), item(3, 'd', 'new')];

    expect(changedItems(originals, next).map((i) => i.key)).toEqual(['b', 'd']);
  });
});

describe('rerunItems', () => {
  it('keeps keys, requests and estimates, numbers the items 0..n-1, and leaves the old outcome behind', () => {
    const chosen = [
      { ...item(4, 'e', 'four'), keyField: 'custom_id' as const, batchPart: 2 },
      { ...item(9, 'j', 'nine'), error: { code: 400, status: 'INVALID_ARGUMENT', message: 'bad' } },
    ];

    const items = rerunItems(chosen);

    expect(items).toEqual([
      {
        id: '000000000',
        index: 0,
        key: 'e',
        keyField: 'custom_id',
        request: chosen[0]!.request,
        estimatedTokens: 3,
      },
      { id: '000000001', index: 1, key: 'j', request: chosen[1]!.request, estimatedTokens: 3 },
    ]);
  });
});
