import { describe, expect, it } from 'vitest';
import { itemIdForIndex } from '../../../../functions/core/jobs.js';
import type { BatchRun } from '../../../../functions/platform/store/batch-runs.js';
import { stagedLines } from '../../../../functions/tick/batch-api/staged-lines.js';
import { FakeObjectStore } from '../../../helpers/fakes.js';

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
});
