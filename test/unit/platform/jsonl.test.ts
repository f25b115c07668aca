import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { maybeGunzip, splitLines } from '../../../functions/platform/jsonl.js';

async function* chunks(...parts: Array<string | Buffer>): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('splitLines', () => {
  it('splits across chunk boundaries, handles CRLF and a last line without newline, with byte offsets', async () => {
    const lines = await all(splitLines(chunks('ab', 'c\r\nde', '\n\nf'), 100));
    expect(lines).toEqual([
      { lineNumber: 1, fromByte: 0, toByte: 5, text: 'abc' },
      { lineNumber: 2, fromByte: 5, toByte: 8, text: 'de' },
      { lineNumber: 3, fromByte: 8, toByte: 9, text: '' },
      { lineNumber: 4, fromByte: 9, toByte: 10, text: 'f' },
    ]);
  });

  it('drops a line over the limit as it streams, and goes on with the next', async () => {
    const lines = await all(splitLines(chunks('x'.repeat(50), 'y'.repeat(60), '\nok\n'), 100));
    expect(lines).toEqual([
      { lineNumber: 1, fromByte: 0, toByte: 111, tooLong: 110 },
      { lineNumber: 2, fromByte: 111, toByte: 114, text: 'ok' },
    ]);
  });

  it('keeps multi-byte characters split between chunks whole, and counts from a start byte', async () => {
    const bytes = Buffer.from('é\n');
    const lines = await all(splitLines(chunks(bytes.subarray(0, 1), bytes.subarray(1)), 10, 100));
    expect(lines).toEqual([{ lineNumber: 1, fromByte: 100, toByte: 103, text: 'é' }]);
  });
});

describe('maybeGunzip', () => {
  it('gunzips gzip bytes and passes anything else through', async () => {
    const text = 'a\nb\n';
    const z = gzipSync(text);
    const unzipped = Buffer.concat(await all(maybeGunzip(chunks(z.subarray(0, 3), z.subarray(3)))));
    expect(unzipped.toString()).toBe(text);
    const plain = Buffer.concat(await all(maybeGunzip(chunks(text))));
    expect(plain.toString()).toBe(text);
  });

  it('fails on a truncated gzip stream instead of ending quietly', async () => {
    const z = gzipSync('x'.repeat(1000));
    await expect(all(maybeGunzip(chunks(z.subarray(0, z.length - 10))))).rejects.toThrow();
  });
});
