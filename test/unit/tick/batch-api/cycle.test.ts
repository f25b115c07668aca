import { describe, expect, it } from 'vitest';
import { reroutePlanMs } from '../../../../functions/core/batch-run.js';
import { GeminiCallError } from '../../../../functions/platform/gemini/client.js';
import { answerLine } from '../../../helpers/fake-batch.js';
import { batchWorld, PENDING_DEADLINE_MS, STALL_MS, TICK_MS } from './batch-world.js';

// The Batch cycle over the fakes (issue 17, scenarios 3, 4 and 8): every step bounded, the responses
// file kept until the part's outcomes are recorded, rerouted items due, no batch paid for twice.

describe('a partial collect (scenario 3)', () => {
  it('keeps the responses file until the fallback is recorded, so a failed fallback is redone, not wedged', async () => {
    // Arrange: the batch answered 2 of 4 items; the first fallback fails after the file was read.
    const w = await batchWorld({ items: 4 });
    const name = await w.submitted();
    w.api.end(name, 'SUCCEEDED', [w.itemIds[0]!, w.itemIds[1]!]);
    const responses = w.api.batches.get(name)!.responsesFile!;
    w.db.failOnce('counters.put');

    // Act
    await w.ticks(3);

    // Assert: the part fell back once its outcomes were durable; only then was the file deleted.
    expect(w.run()).toMatchObject({ state: 'fallen-back', rerouted: 2, lastError: null });
    expect([w.item(0).state, w.item(1).state]).toEqual(['succeeded', 'succeeded']);
    expect([w.item(2).batchPart, w.item(3).batchPart]).toEqual([undefined, undefined]);
    expect(w.api.deleted).toContain(responses);
    expect(w.api.files.has(responses)).toBe(false);
  });

  const faults: Array<[string, (w: Awaited<ReturnType<typeof batchWorld>>, name: string) => void, RegExp]> = [
    [
      'the responses file is gone (download 404)',
      (w, name) => {
        w.api.end(name, 'SUCCEEDED', [w.itemIds[0]!]);
        w.api.files.delete(w.api.batches.get(name)!.responsesFile!);
      },
      /not found/,
    ],
    ['the batch is gone (getBatch 404)', (w, name) => w.api.batches.delete(name), /not found/],
    [
      'the batch is in a state nobody knows',
      (w) =>
        w.api.failNext(
          'getBatch',
          new GeminiCallError('Unexpected batch resource: unknown batch state X', 200, {}),
          50,
        ),
      /unknown batch state/,
    ],
    [
      'the batch succeeded without a responses file',
      (w, name) => w.api.setState(name, 'SUCCEEDED'),
      /no responses file/,
    ],
  ];

  it.each(faults)(
    'falls back after a bounded number of failed ticks when %s',
    async (_what, fault, reason) => {
      // Arrange
      const w = await batchWorld({ items: 3 });
      const name = await w.submitted();
      fault(w, name);

      // Act: more ticks than the bound (3 failures).
      await w.ticks(6);

      // Assert
      expect(w.run().state).toBe('fallen-back');
      expect(w.run().fallback).toMatch(reason);
      expect(w.item(2).batchPart).toBeUndefined();
      expect(w.tasks.controlTasks.size).toBe(1);
    },
  );

  it('falls back when an upload is answered 200 with no file on every tick', async () => {
    // Arrange
    const w = await batchWorld({ items: 3 });
    w.api.failNext('uploadJsonl', new GeminiCallError('The final upload answer names no file', 200, {}), 50);

    // Act
    await w.ticks(6);

    // Assert
    expect(w.run()).toMatchObject({ state: 'fallen-back', batchName: null });
    expect(w.run().fallback).toMatch(/names no file/);
    expect(w.api.createCalls).toEqual([]);
  });

  it('falls back when one step has been failing longer than the time bound, however few its failures', async () => {
    // Arrange: the bound of failures is out of reach; the time bound is 3 ticks.
    const w = await batchWorld({ items: 2 });
    Object.assign(w.deps, { maxStepFailures: 1000, maxStepMs: 3 * TICK_MS });
    const name = await w.submitted();
    w.api.batches.delete(name);

    // Act
    await w.ticks(3);
    const before = w.run().state;
    await w.ticks(2);

    // Assert
    expect(before).toBe('running');
    expect(w.run().state).toBe('fallen-back');
  });
});

describe('rerouted items (scenario 4)', () => {
  it('are due by the stall window past the time their enqueue task needs, in the write that sends them back', async () => {
    // Arrange
    const w = await batchWorld({ items: 3 });
    const name = await w.submitted();
    w.api.setState(name, 'FAILED');

    // Act
    await w.tick();

    // Assert: the reconciler's sweep finds them if the enqueue chain dies.
    expect(w.run().state).toBe('fallen-back');
    for (const i of [0, 1, 2]) {
      expect(w.item(i).batchPart).toBeUndefined();
      expect((w.item(i) as { dueByMs?: number }).dueByMs).toBe(w.now() + STALL_MS + reroutePlanMs(3, 1000));
    }
  });
});

describe('no batch paid for twice (scenario 8)', () => {
  it('keeps the run open when cancelling the batch of a cancelled job fails, and cancels it on a later tick', async () => {
    // Arrange
    const w = await batchWorld({ items: 2 });
    const name = await w.submitted();
    w.api.setState(name, 'RUNNING');
    await w.lifecycle.cancel(w.jobId);
    w.api.failNext('cancelBatch', new GeminiCallError('Gemini answered 503', 503, {}));

    // Act
    await w.tick();
    const afterFailure = { ...w.run() };
    await w.tick();

    // Assert
    expect(afterFailure.state).toBe('running');
    expect(afterFailure.lastError).toMatch(/503/);
    expect(w.api.batches.get(name)!.state).toBe('CANCELLED');
    expect(w.run().state).toBe('cancelled');
  });

  it('finds a batch an ambiguous create made after all, and cancels it', async () => {
    // Arrange: the first create times out although the batch was made, and the list shows it late.
    const w = await batchWorld({ items: 2 });
    w.api.listLag = 2;
    w.api.failNext('createBatch', new GeminiCallError('the request timed out', undefined, {}));

    // Act
    await w.ticks(5);

    // Assert: two batches were made; the one the run does not follow is cancelled.
    expect(w.api.createCalls).toHaveLength(2);
    const [first, second] = w.api.createCalls;
    expect(w.run().batchName).toBe(second);
    expect(w.api.batches.get(first!)!.state).toBe('CANCELLED');
    expect(w.api.batches.get(second!)!.state).not.toBe('CANCELLED');
  });

  it('collects what a batch answered before it was cancelled for staying pending', async () => {
    // Arrange: read PENDING past the deadline; it starts and answers half before the cancel lands.
    const w = await batchWorld({ items: 4 });
    const name = await w.submitted();
    w.api.onCancel = (b) => {
      const file = 'files/partial';
      w.api.files.set(file, [answerLine(w.itemIds[0]!), answerLine(w.itemIds[1]!)]);
      w.api.batches.get(b.name)!.responsesFile = file;
    };
    w.deps.now = (() => {
      const base = w.now;
      return () => base() + PENDING_DEADLINE_MS;
    })();

    // Act
    await w.tick();

    // Assert: the answered lines are kept, the rest go back.
    expect(w.api.cancelCalls).toEqual([name]);
    expect(w.run()).toMatchObject({ state: 'fallen-back', rerouted: 2 });
    expect([w.item(0).state, w.item(1).state]).toEqual(['succeeded', 'succeeded']);
    expect([w.item(2).batchPart, w.item(3).batchPart]).toEqual([undefined, undefined]);
  });
});

describe('cancelling the batch of a cancelled job', () => {
  it('gives up after the step bound when upstream keeps refusing, rather than holding the run open forever', async () => {
    // Arrange
    const w = await batchWorld({ items: 2 });
    const name = await w.submitted();
    w.api.setState(name, 'RUNNING');
    await w.lifecycle.cancel(w.jobId);
    w.api.failNext('cancelBatch', new GeminiCallError('Gemini answered 503', 503, {}), 50);

    // Act: more ticks than the bound (3 failures).
    await w.ticks(3);
    const whileTrying = w.run().state;
    await w.ticks(2);

    // Assert
    expect(whileTrying).toBe('running');
    expect(w.api.cancelCalls.length).toBe(3);
    expect(w.run().state).toBe('cancelled');
  });

  it('cancels a batch whose create was in flight, found by its displayName', async () => {
    // Arrange: the create's answer was lost; the job is cancelled before any tick adopts the batch.
    const w = await batchWorld({ items: 2 });
    w.api.failNext('createBatch', new GeminiCallError('the request timed out', undefined, {}));
    await w.tick();
    await w.lifecycle.cancel(w.jobId);

    // Act
    await w.tick();

    // Assert
    const [made] = w.api.createCalls;
    expect(w.run()).toMatchObject({ state: 'cancelled', batchName: null });
    expect(w.api.batches.get(made!)!.state).toBe('CANCELLED');
  });
});

describe('giving up on a create that keeps failing', () => {
  it('cancels a batch one of its creates made after all, before the items go back', async () => {
    // Arrange: every create answers 503 although it made a batch, each shown two list calls later.
    const w = await batchWorld({ items: 2 });
    w.api.listLag = 2;
    w.api.failNext('createBatch', new GeminiCallError('Gemini answered 503', 503, {}), 50);

    // Act: three failed creates (the bound), then the tick that gives up.
    await w.ticks(4);

    // Assert: the part fell back, and the batch the list shows by then is cancelled.
    expect(w.run().state).toBe('fallen-back');
    expect(w.run().fallback).toMatch(/503/);
    expect(w.api.batches.get(w.api.createCalls[0]!)!.state).toBe('CANCELLED');
  });
});
