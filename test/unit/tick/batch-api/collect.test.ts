import { describe, expect, it } from 'vitest';
import { answerLine } from '../../../helpers/fake-batch.js';
import { batchWorld } from './batch-world.js';

// Collecting a batch whose lines failed (issue 23): 429, 500 and 503 lines go back through
// realtime, which would have retried them; any other error is the item's final answer.

/** A responses file line that failed with `code` (a google.rpc.Status, as the Batch API writes it). */
function errorLine(key: string, code: number): string {
  return JSON.stringify({ key, error: { code, message: `failed with ${code}` } });
}

/** Ends the world's batch SUCCEEDED with these lines. */
function endWith(w: Awaited<ReturnType<typeof batchWorld>>, name: string, lines: string[]): void {
  w.api.end(name, 'SUCCEEDED', []);
  w.api.files.set(w.api.batches.get(name)!.responsesFile!, lines);
}

describe('collecting lines that failed', () => {
  it('sends lines failed with 429, 500 (gRPC 13) and 503 back through realtime; a 400 line stays failed', async () => {
    // Arrange
    const w = await batchWorld({ items: 5 });
    const name = await w.submitted();
    const [a, b, c, d, e] = w.itemIds;
    endWith(w, name, [
      answerLine(a!),
      errorLine(b!, 429),
      errorLine(c!, 13),
      errorLine(d!, 503),
      errorLine(e!, 400),
    ]);
    // Act
    await w.tick();
    // Assert
    expect(w.run()).toMatchObject({ state: 'fallen-back', rerouted: 3 });
    expect(w.run().fallback).toMatch(/3 batch lines failed with a transient error/);
    expect(w.item(0).state).toBe('succeeded');
    expect([1, 2, 3].map((i) => [w.item(i).state, w.item(i).batchPart])).toEqual([
      ['pending', undefined],
      ['pending', undefined],
      ['pending', undefined],
    ]);
    expect(w.item(4)).toMatchObject({ state: 'failed', error: { code: 400 } });
    expect(w.tasks.controlTasks.size).toBe(1);
  });

  it("keeps transient line errors as the items' errors when the job asked to fail a batch's troubles", async () => {
    // Arrange
    const w = await batchWorld({ items: 2, onBatchFailure: 'fail' });
    const name = await w.submitted();
    endWith(w, name, [answerLine(w.itemIds[0]!), errorLine(w.itemIds[1]!, 503)]);
    // Act
    await w.tick();
    // Assert
    expect(w.run()).toMatchObject({ state: 'collected', rerouted: 0 });
    expect(w.item(1)).toMatchObject({ state: 'failed', error: { code: 503, status: 'UNAVAILABLE' } });
  });
});
