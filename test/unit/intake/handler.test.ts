import { describe, expect, it } from 'vitest';
import { ownerPrefix } from '../../../functions/core/owner-prefix.js';
import { intakeObject, jobIdForObject } from '../../../functions/intake/handler.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

// intake over the in-memory stores: what a duplicated, late or foreign event does. The e2e suite
// (test/e2e/bucket-intake.test.ts) runs the real chain through the local cloud.

const BUCKET = 'b';

function setup() {
  const capture = createLogCapture();
  const logger = createLogger({ destination: capture.stream });
  const world = fakeWorld({ quotas: testQuotas(), logger });
  const deps = {
    lifecycle: world.lifecycle,
    objects: world.objects,
    quotas: testQuotas(),
    logger,
    bucket: BUCKET,
  };
  const drop = (name: string, lines: string[]) => world.objects.objects.set(name, `${lines.join('\n')}\n`);
  return { ...world, deps, drop, capture };
}

describe('intake', () => {
  it('makes one job of a finalize event delivered twice at once, and never resets a finished item', async () => {
    const { deps, drop, db } = setup();
    drop('inbox/a.jsonl', ['{"prompt":"one"}', '{"prompt":"two"}']);
    const event = { bucket: BUCKET, name: 'inbox/a.jsonl', generation: '7' };
    const jobId = jobIdForObject(BUCKET, event.name, '7');

    const outcomes = await Promise.all([intakeObject(event, deps), intakeObject(event, deps)]);
    expect(outcomes.map((o) => o.outcome).sort()).toEqual(['created', 'duplicate']);

    // A worker finishes item 0; the same event once more (a third delivery, mid-run) changes nothing.
    db.settle(jobId, '000000000', { state: 'succeeded', response: { ok: 1 } });
    await deps.lifecycle.storeItems(jobId, [
      { id: '000000000', index: 0, key: '1', request: { contents: [] }, estimatedTokens: 1 },
    ]);
    expect(await intakeObject(event, deps)).toEqual({ outcome: 'duplicate', jobId });
    expect(db.items.get(jobId)!.get('000000000')!.state).toBe('succeeded');
  });

  it('acknowledges an event for a generation that is gone (a late event: nothing to read, ever)', async () => {
    const { deps, capture } = setup();

    const outcome = await intakeObject({ bucket: BUCKET, name: 'inbox/gone.jsonl', generation: '3' }, deps);

    expect(outcome).toEqual({ outcome: 'ignored', reason: 'this generation of the file is gone' });
    expect(capture.events('intake.gone')).toHaveLength(1);
  });

  it('ignores other buckets and its own outputs with a log line', async () => {
    const { deps, capture } = setup();

    expect((await intakeObject({ bucket: 'other', name: 'inbox/a.jsonl' }, deps)).outcome).toBe('ignored');
    expect((await intakeObject({ bucket: BUCKET, name: 'results/a.jsonl' }, deps)).outcome).toBe('ignored');
    expect(capture.events('intake.ignored')).toHaveLength(2);
  });

  it('runs a file whose metadata names no model on its first line’s model, as a Batch file names it', async () => {
    const { deps, drop, db } = setup();
    const line = (id: string, model: string) =>
      JSON.stringify({ custom_id: id, request: { model, contents: [{ parts: [{ text: id }] }] } });
    drop('inbox/seed.jsonl', ['', line('req-1', 'models/gemini-2.5-pro'), line('req-2', 'gemini-2.5-flash')]);

    const outcome = await intakeObject({ bucket: BUCKET, name: 'inbox/seed.jsonl', generation: '1' }, deps);
    const jobId = jobIdForObject(BUCKET, 'inbox/seed.jsonl', '1');
    const items = [...db.items.get(jobId)!.values()];

    expect(outcome).toMatchObject({ outcome: 'created', total: 2 });
    expect(db.jobs.get(jobId)?.model).toBe('gemini-2.5-pro');
    expect(items.map((i) => [i.key, i.keyField, i.state])).toEqual([
      ['req-1', 'custom_id', 'pending'],
      ['req-2', 'custom_id', 'failed'],
    ]);
  });

  it('rejects a file with bad options with a summary that says which, and makes no job', async () => {
    const { deps, objects, db } = setup();
    objects.objects.set('inbox/o.jsonl', '{"prompt":"x"}\n');

    const outcome = await intakeObject(
      { bucket: BUCKET, name: 'inbox/o.jsonl', generation: '1', metadata: { mode: 'sometimes' } },
      deps,
    );

    expect(outcome).toMatchObject({ outcome: 'rejected', message: expect.stringMatching(/metadata mode/) });
    expect(JSON.parse(objects.objects.get('results/o.jsonl.summary.json')!)).toMatchObject({
      status: 'failed',
      error: { status: 'INVALID_ARGUMENT' },
    });
    expect(db.jobs.size).toBe(0);
  });
});

describe('intake: bucket owners', () => {
  const alice = ownerPrefix('alice@example.com');
  const withOwners = (deps: ReturnType<typeof setup>['deps']) => ({
    ...deps,
    bucketOwners: { [alice]: 'alice@example.com' },
    mediaGcsAllowed: ['gs://bkt/media/'],
    mediaGcsShared: ['gs://bkt/media/samples/'],
  });

  it("makes a file under an owner's prefix that owner's job, its results under the same prefix", async () => {
    const { deps, drop, db } = setup();
    const name = `inbox/${alice}/run.jsonl`;
    drop(name, ['{"prompt":"one"}']);

    const outcome = await intakeObject({ bucket: BUCKET, name, generation: '1' }, withOwners(deps));

    expect(outcome).toMatchObject({ outcome: 'created' });
    const job = db.jobs.get(jobIdForObject(BUCKET, name, '1'))!;
    expect(job.owner).toBe('alice@example.com');
    expect(job.output).toBe(`results/${alice}/run.jsonl`);
  });

  it("checks a line's gs:// media against the file owner's folder, not the whole root", async () => {
    const { deps, drop, db } = setup();
    const bob = ownerPrefix('bob@example.com');
    const name = `inbox/${alice}/media.jsonl`;
    drop(name, [
      JSON.stringify({ key: 'own', prompt: 'a', media: [{ gcsUri: `gs://bkt/media/${alice}/a.png` }] }),
      JSON.stringify({ key: 'shared', prompt: 'a', media: [{ gcsUri: 'gs://bkt/media/samples/red.png' }] }),
      JSON.stringify({ key: 'theirs', prompt: 'a', media: [{ gcsUri: `gs://bkt/media/${bob}/a.png` }] }),
    ]);

    await intakeObject({ bucket: BUCKET, name, generation: '1' }, withOwners(deps));

    const items = [...db.items.get(jobIdForObject(BUCKET, name, '1'))!.values()];
    expect(items.map((i) => [i.key, i.state])).toEqual([
      ['own', 'pending'],
      ['shared', 'pending'],
      ['theirs', 'failed'],
    ]);
    expect(items[2]!.error?.message).toMatch(/outside the allowed locations/);
  });

  it('refuses a file under the prefix of no configured owner, with a summary, and makes no job', async () => {
    const { deps, drop, objects, db } = setup();
    const removed = ownerPrefix('mallory@example.com');
    drop(`inbox/${removed}/x.jsonl`, ['{"prompt":"one"}']);

    const outcome = await intakeObject(
      { bucket: BUCKET, name: `inbox/${removed}/x.jsonl`, generation: '1' },
      withOwners(deps),
    );

    expect(outcome).toMatchObject({ outcome: 'rejected', message: expect.stringMatching(/no bucket owner/) });
    expect(JSON.parse(objects.objects.get(`results/${removed}/x.jsonl.summary.json`)!)).toMatchObject({
      status: 'failed',
    });
    expect(db.jobs.size).toBe(0);
  });
});

describe('intake: the caps on a file', () => {
  it('stops reading at the first line past BUCKET_MAX_LINES (blank lines count) and says so in the summary', async () => {
    const { deps, drop, objects, db } = setup();
    drop('inbox/long.jsonl', ['{"prompt":"1"}', '', '{"prompt":"3"}', '{"prompt":"4"}', '{"prompt":"5"}']);

    const outcome = await intakeObject(
      { bucket: BUCKET, name: 'inbox/long.jsonl', generation: '1' },
      { ...deps, caps: { maxLines: 3, maxBytes: 1024 } },
    );

    expect(outcome).toMatchObject({ outcome: 'rejected' });
    expect(JSON.parse(objects.objects.get('results/long.jsonl.summary.json')!)).toMatchObject({
      job: null,
      status: 'failed',
      error: { code: 400, message: expect.stringMatching(/stopped at line 4: .*more than 3 lines/) },
      stoppedAt: { line: 4, reason: 'lines', cap: 3 },
    });
    expect(db.jobs.size).toBe(0);
  });

  it('takes a file of exactly BUCKET_MAX_LINES lines', async () => {
    const { deps, drop } = setup();
    drop('inbox/exact.jsonl', ['{"prompt":"1"}', '{"prompt":"2"}', '{"prompt":"3"}']);

    const outcome = await intakeObject(
      { bucket: BUCKET, name: 'inbox/exact.jsonl', generation: '1' },
      { ...deps, caps: { maxLines: 3, maxBytes: 1024 } },
    );

    expect(outcome).toMatchObject({ outcome: 'created', total: 3 });
  });

  it('stops reading once the bytes pass BUCKET_MAX_BYTES, naming the line it was in', async () => {
    const { deps, drop, objects, db } = setup();
    drop('inbox/big.jsonl', [JSON.stringify({ prompt: 'x'.repeat(3000) })]);

    const outcome = await intakeObject(
      { bucket: BUCKET, name: 'inbox/big.jsonl', generation: '1' },
      { ...deps, caps: { maxLines: 10, maxBytes: 2048 } },
    );

    expect(outcome).toMatchObject({ outcome: 'rejected' });
    expect(JSON.parse(objects.objects.get('results/big.jsonl.summary.json')!)).toMatchObject({
      error: { message: expect.stringMatching(/stopped at line 1: .*larger than 2048 bytes once inflated/) },
      stoppedAt: { line: 1, reason: 'bytes', cap: 2048 },
    });
    expect(db.jobs.size).toBe(0);
  });
});
