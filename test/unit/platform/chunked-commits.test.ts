import { describe, expect, it } from 'vitest';
import { chunksOf, paceDelayMs } from '../../../functions/platform/store/chunked-commits.js';

const write = (bytes: number) => ({ bytes });

describe('chunksOf (many writes as a few commits)', () => {
  it('keeps the writes in order, at most 250 a commit', () => {
    const writes = Array.from({ length: 600 }, () => write(10));
    const chunks = chunksOf(writes);
    expect(chunks.map((c) => c.length)).toEqual([250, 250, 100]);
    expect(chunks.flat()).toEqual(writes);
  });

  it('cuts by size too, well inside the 10 MiB a commit may carry, and always holds one write', () => {
    const chunks = chunksOf([write(3_000_000), write(3_000_000), write(9_000_000), write(10), write(10)]);
    expect(chunks.map((c) => c.length)).toEqual([1, 1, 1, 2]);
    expect(chunksOf([])).toEqual([]);
  });

  it('goes no faster than 5,000 writes at once and 5,000 a second after', () => {
    const starts = chunksOf(Array.from({ length: 10_000 }, () => write(10))).map((chunk, n) =>
      paceDelayMs(n * 250, chunk.length),
    );
    expect(starts.slice(0, 20)).toEqual(Array(20).fill(0));
    expect(starts[20]).toBe(50);
    expect(starts.at(-1)).toBe(1000);
  });
});
