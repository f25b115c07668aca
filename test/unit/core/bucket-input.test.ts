import { describe, expect, it } from 'vitest';
import {
  bucketOwnerOf,
  duplicateKeyLine,
  lineDefaults,
  parseFileOptions,
  parseInputLine,
  resultsObjectName,
  skipReason,
  summaryObjectName,
} from '../../../functions/core/bucket-input.js';
import { ownerPrefix } from '../../../functions/core/owner-prefix.js';

describe('which objects become jobs (the guard and the loop guard)', () => {
  it('takes .jsonl and .jsonl.gz under inbox/ of the project bucket only', () => {
    expect(skipReason('b', 'inbox/a.jsonl', 'b')).toBeUndefined();
    expect(skipReason('b', 'inbox/x/y.jsonl.gz', 'b')).toBeUndefined();
    expect(skipReason('other', 'inbox/a.jsonl', 'b')).toMatch(/not the project's bucket/);
    expect(skipReason('b', 'results/a.jsonl', 'b')).toMatch(/own output/);
    expect(skipReason('b', 'staging/a.jsonl', 'b')).toMatch(/own output/);
    expect(skipReason('b', 'a.jsonl', 'b')).toMatch(/inbox/);
    expect(skipReason('b', 'inbox/a.csv', 'b')).toMatch(/jsonl/);
    for (const trick of [
      'inbox/../staging/a.jsonl',
      'inbox/./a.jsonl',
      'inbox//a.jsonl',
      'inbox/a\\b.jsonl',
      'inbox/a\nb.jsonl',
    ])
      expect(skipReason('b', trick, 'b'), trick).toMatch(/path trick/);
  });

  it('writes results under the same path, and the summary beside them', () => {
    expect(resultsObjectName('inbox/2026/a.jsonl.gz')).toBe('results/2026/a.jsonl.gz');
    expect(summaryObjectName('results/a.jsonl')).toBe('results/a.jsonl.summary.json');
  });
});

describe('file options from object metadata', () => {
  it('reads model, mode, config, systemInstruction and onBatchFailure, defaulting mode to auto', () => {
    expect(parseFileOptions({ model: 'gemini-2.5-pro', config: '{"temperature":0}', owner: 'x' })).toEqual({
      model: 'gemini-2.5-pro',
      mode: 'auto',
      config: { temperature: 0 },
      onBatchFailure: 'realtime',
    });
    expect(parseFileOptions(undefined)).toEqual({ mode: 'auto', onBatchFailure: 'realtime' });
  });

  it('names the bad key', () => {
    expect(parseFileOptions({ config: '[1]' })).toEqual({
      problem: expect.stringMatching(/^object metadata config/),
    });
    expect(parseFileOptions({ mode: 'soon' })).toEqual({
      problem: expect.stringMatching(/^object metadata mode/),
    });
  });
});

describe('parseInputLine', () => {
  const none = {};

  it('makes a prompt line an item with its key, or the line number when it has none', () => {
    const a = parseInputLine({ text: '{"key":"a","prompt":"hi"}' }, 3, 0, none);
    expect(a).toMatchObject({ ok: true, item: { id: '000000000', index: 0, key: 'a' } });
    const b = parseInputLine({ text: '{"prompt":"hi"}' }, 7, 2, none);
    expect(b).toMatchObject({ ok: true, item: { key: '7', index: 2 } });
  });

  it('gives the file options to every request, the line’s own settings winning', () => {
    const defaults = lineDefaults({ config: { temperature: 0, topK: 3 }, systemInstruction: 'be brief' });
    const line = JSON.stringify({
      key: 'k',
      request: { contents: [{ parts: [{ text: 'x' }] }], generationConfig: { temperature: 1 } },
    });
    const parsed = parseInputLine({ text: line }, 1, 0, defaults);
    expect(parsed.ok && parsed.item.request).toMatchObject({
      generationConfig: { temperature: 1, topK: 3 },
      systemInstruction: { parts: [{ text: 'be brief' }] },
    });
  });

  it('turns broken JSON, a line without prompt, and a line over the limit into error lines', () => {
    expect(parseInputLine({ text: '{nope' }, 4, 1, none)).toEqual({
      ok: false,
      key: '4',
      error: { code: 400, status: 'INVALID_ARGUMENT', message: 'line 4: not valid JSON' },
    });
    expect(parseInputLine({ text: '{"key":"q"}' }, 5, 1, none)).toMatchObject({
      ok: false,
      key: 'q',
      error: { message: expect.stringMatching(/^line 5: .*exactly one of prompt or request/) },
    });
    expect(parseInputLine({ tooLong: 999_999 }, 6, 1, none)).toMatchObject({
      ok: false,
      key: '6',
      error: { message: expect.stringMatching(/over \d+ bytes/) },
    });
  });

  it('names a duplicate key with its line', () => {
    expect(duplicateKeyLine('a', 9)).toMatchObject({
      ok: false,
      key: 'a',
      error: { message: 'line 9: duplicate key "a"' },
    });
  });
});

describe('bucketOwnerOf: whose job a bucket file is', () => {
  const alice = ownerPrefix('alice@example.com');
  const owners = { [alice]: 'alice@example.com' };

  it("makes a file under a bucket owner's prefix that owner's job, at any depth", () => {
    expect(bucketOwnerOf(`inbox/${alice}/a.jsonl`, owners)).toEqual({ owner: 'alice@example.com' });
    expect(bucketOwnerOf(`inbox/${alice}/2026/x/a.jsonl.gz`, owners)).toEqual({ owner: 'alice@example.com' });
    expect(resultsObjectName(`inbox/${alice}/2026/a.jsonl`)).toBe(`results/${alice}/2026/a.jsonl`);
  });

  it('leaves a file straight under inbox/ or under an ordinary folder without an owner (an admin job)', () => {
    expect(bucketOwnerOf('inbox/a.jsonl', owners)).toEqual({});
    expect(bucketOwnerOf('inbox/2026/a.jsonl', owners)).toEqual({});
    expect(bucketOwnerOf(`inbox/${alice}.jsonl`, owners)).toEqual({});
  });

  it('refuses a file under an owner prefix that belongs to no configured owner', () => {
    const removed = ownerPrefix('mallory@example.com');

    expect(bucketOwnerOf(`inbox/${removed}/a.jsonl`, owners)).toEqual({
      problem: expect.stringContaining(`inbox/${removed}/ is the folder of no bucket owner`),
    });
    expect(bucketOwnerOf(`inbox/${removed}/a.jsonl`, {})).toHaveProperty('problem');
  });
});
