import { describe, expect, it } from 'vitest';
import { GeminiCallError } from '../../../../functions/platform/gemini/client.js';
import { UploadAnswerError } from '../../../../functions/platform/gemini/files-upload.js';
import { FILE_REUSE_MS, UPLOAD_TRIES } from '../../../../functions/tick/batch-api/submit.js';
import { batchWorld } from './batch-world.js';

// The submit step against the Files API's habits (issue 23): the upload's size declared, a final
// answer without a file tried a bounded number of times, the input uploaded just before its create
// and again when it grew old or is gone upstream.

const tooMany = () => new GeminiCallError('Gemini answered 429', 429, { error: { code: 429 } });

describe('the upload of a part', () => {
  it('declares the exact bytes of the lines it sends', async () => {
    // Arrange
    const w = await batchWorld({ items: 3 });
    // Act
    await w.submitted();
    // Assert
    expect(w.api.uploads).toHaveLength(1);
    expect(w.api.uploads[0]!.sizeBytes).toBe(w.api.uploads[0]!.bytes);
    expect(w.api.uploads[0]!.bytes).toBeGreaterThan(0);
  });

  it(`falls back after ${UPLOAD_TRIES} uploads answered without a file, well within the step's bound`, async () => {
    // Arrange: the step's own bound is far away.
    const w = await batchWorld({ items: 3 });
    w.deps.maxStepFailures = 30;
    w.api.failNext('uploadJsonl', new UploadAnswerError('The final upload answer names no file', {}), 50);
    // Act
    await w.ticks(UPLOAD_TRIES + 2);
    // Assert
    expect(w.api.uploads).toHaveLength(UPLOAD_TRIES);
    expect(w.run()).toMatchObject({ state: 'fallen-back', batchName: null });
    expect(w.run().fallback).toMatch(/names no file \(3 uploads\)/);
    expect(w.api.createCalls).toEqual([]);
    expect(w.tasks.controlTasks.size).toBe(1);
  });

  it('falls back at once when the final answer carries a refusal (an error body with a 4xx)', async () => {
    // Arrange
    const w = await batchWorld({ items: 2 });
    const refusal = new GeminiCallError(
      'The final upload answer is an error: Unsupported MIME type: x',
      400,
      {},
    );
    w.api.failNext('uploadJsonl', refusal, 1);
    // Act
    await w.tick();
    // Assert
    expect(w.run().state).toBe('fallen-back');
    expect(w.run().fallback).toMatch(/could not be uploaded: .*Unsupported MIME type/);
  });
});

describe('the input file of a part that waits', () => {
  it('is uploaded again before a create once it is older than FILE_REUSE_MS, the old one deleted', async () => {
    // Arrange: creates refused with 429 for longer than a file should be reused; the deadline is further.
    const w = await batchWorld({ items: 2 });
    w.deps.pendingDeadlineMs = 3 * FILE_REUSE_MS;
    w.api.refusedCreates.push(tooMany());
    await w.tick();
    const first = w.run().fileName!;
    // Act: the next try comes after the reuse window.
    w.api.refusedCreates.push(tooMany());
    await w.tick();
    const reused = w.run().fileName;
    w.skip(FILE_REUSE_MS);
    const name = await w.submitted();
    // Assert
    expect(reused).toBe(first);
    expect(w.api.uploads).toHaveLength(2);
    expect(w.api.deleted).toContain(first);
    expect(w.run().fileName).not.toBe(first);
    expect(name).toMatch(/^batches\//);
  });

  it('is uploaded again when the create says it is gone (expired or deleted upstream)', async () => {
    // Arrange: the file disappears between the upload and the create.
    const w = await batchWorld({ items: 2 });
    w.api.refusedCreates.push(tooMany());
    await w.tick();
    w.api.files.delete(w.run().fileName!);
    // Act
    await w.tick();
    const afterGone = { ...w.run() };
    await w.tick();
    // Assert
    expect(afterGone).toMatchObject({ state: 'staged', fileName: null, createStartedMs: null });
    expect(afterGone.lastError).toMatch(/gone upstream/);
    expect(w.api.uploads).toHaveLength(2);
    expect(w.run()).toMatchObject({ state: 'running', lastError: null });
  });

  it("is not uploaded while the job's own earlier batch is in flight, then just before its create", async () => {
    // Arrange: another part of the job is running upstream; this one's create is refused with 429.
    const w = await batchWorld({ items: 2 });
    const other = { ...w.run(), id: `${w.jobId}-p1`, part: 1, displayName: `fanout-${w.jobId}-p1` };
    await w.deps.runs.createMany([other]);
    const p1 = (await w.deps.runs.listForJob(w.jobId)).find((r) => r.part === 1)!;
    await w.deps.runs.update(p1, {
      state: 'running',
      batchName: 'batches/elsewhere',
      leaseUntilMs: Date.now() * 2,
    });
    w.api.refusedCreates.push(tooMany());
    // Act
    await w.tick(); // upload, create refused: the file is dropped
    const afterRefusal = { fileName: runOf(w, 0).fileName, deleted: [...w.api.deleted] };
    await w.ticks(3); // waiting behind part 1: no upload
    const uploadsWhileWaiting = w.api.uploads.length;
    const held = (await w.deps.runs.listForJob(w.jobId)).find((r) => r.part === 1)!;
    await w.deps.runs.update(held, { state: 'collected' });
    await w.tick();
    // Assert
    expect(afterRefusal.fileName).toBeNull();
    expect(afterRefusal.deleted).toHaveLength(1);
    expect(uploadsWhileWaiting).toBe(1);
    expect(w.api.uploads).toHaveLength(2);
    expect(runOf(w, 0).state).toBe('running');
  });
});

type World = Awaited<ReturnType<typeof batchWorld>>;

/** The job's run of `part`, as stored. */
function runOf(w: World, part: number) {
  return w.deps.runs.runs.get(`${w.jobId}-p${part}`)!;
}
