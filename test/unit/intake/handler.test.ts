import { describe, expect, it } from 'vitest';
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
