import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { itemIdForIndex } from '../../../../functions/core/jobs.js';
import type { BatchRun } from '../../../../functions/platform/store/batch-runs.js';
import { stagedLines } from '../../../../functions/tick/batch-api/staged-lines.js';
import { FakeObjectStore } from '../../../helpers/fakes.js';

/** A store whose objects are gzipped on the way out (a `.jsonl.gz` file in the bucket). */
class GzipObjectStore extends FakeObjectStore {
  override async *read(name: string): AsyncIterable<Uint8Array> {
    for await (const chunk of super.read(name)) yield gzipSync(chunk);
  }
}

describe('stagedLines', () => {
  it('leaves out the lines the part names as stored failed (a duplicate key), which would be paid for', async () => {
    // Arrange: line 2 repeats line 0's key; intake stored it failed, and the part says so.
    const objects = new FakeObjectStore();
    const text = ['a', 'b', 'a', 'c']
      .map((k) => `${JSON.stringify({ key: k, prompt: `p-${k}` })}\n`)
      .join('');
    objects.objects.set('staging/s.jsonl', text);
    const run = {
      id: 'j-p0',
      part: 0,
      fromIndex: 0,
      toIndex: 4,
      fromByte: 0,
      toByte: Buffer.byteLength(text),
      skip: [2],
    } as BatchRun;

    // Act
    const lines: string[] = [];
    for await (const l of stagedLines(run, { staged: { object: 'staging/s.jsonl' } }, objects)) lines.push(l);

    // Assert
    expect(lines.map((l) => JSON.parse(l).key)).toEqual([0, 1, 3].map(itemIdForIndex));
  });

  it("skips a gzip pipeline file's header line: it is no item, so line n is still item n", async () => {
    // Arrange: a gzip file is read whole (no byte ranges), from its first line, the header.
    const objects = new GzipObjectStore();
    const header = JSON.stringify({ steps: [{ name: 'one', prompt: '{{input}}' }] });
    const items = ['a', 'b', 'c'].map((k) => JSON.stringify({ key: k, prompt: `p-${k}` }));
    objects.objects.set('inbox/p.jsonl.gz', `${[header, ...items].join('\n')}\n`);
    const run = { id: 'j-p0', part: 0, fromIndex: 1, toIndex: 3, fromByte: 0, toByte: 0 } as BatchRun;

    // Act
    const lines: string[] = [];
    for await (const l of stagedLines(run, { staged: { object: 'inbox/p.jsonl.gz' } }, objects))
      lines.push(l);

    // Assert
    const sent = lines.map(
      (l) => JSON.parse(l) as { key: string; request: { contents: [{ parts: [{ text: string }] }] } },
    );
    expect(sent.map((l) => [l.key, l.request.contents[0].parts[0].text])).toEqual([
      [itemIdForIndex(1), 'p-b'],
      [itemIdForIndex(2), 'p-c'],
    ]);
  });
});
