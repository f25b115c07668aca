import { describe, expect, it } from 'vitest';
import { looksLikePipelineHeader, pipelineHeaderOf } from '../../../functions/core/bucket-header.js';
import { intakeObject, jobIdForObject } from '../../../functions/intake/handler.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

// A bucket file whose first line is a pipeline header, over the in-memory stores.

const BUCKET = 'b';
const HEADER = JSON.stringify({
  steps: [
    { name: 'extract', prompt: 'Facts in: {{input}}' },
    { name: 'judge', models: ['gemini-2.5-pro'], prompt: 'Check {{extract}}' },
  ],
  onStepError: 'continue',
});

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
  const intake = (name: string) => intakeObject({ bucket: BUCKET, name, generation: '1' }, deps);
  const jobOf = (name: string) => jobIdForObject(BUCKET, name, '1');
  return { ...world, drop, intake, jobOf, capture };
}

describe('a bucket file with a pipeline header', () => {
  it('becomes a pipeline job: the header gives its steps, and is no item (no index, no result line)', async () => {
    // Arrange
    const { drop, intake, jobOf, db } = setup();
    const item = (key: string, model: string) =>
      JSON.stringify({ key, request: { model, contents: [{ parts: [{ text: key }] }] } });
    drop('inbox/p.jsonl', ['', HEADER, item('a', 'gemini-2.5-pro'), '{"prompt":"two"}']);

    // Act
    const outcome = await intake('inbox/p.jsonl');

    // Assert
    expect(outcome).toMatchObject({ outcome: 'created', total: 2 });
    const job = db.jobs.get(jobOf('inbox/p.jsonl'))!;
    // The engine's pipeline: `extract` on the job's model, which is its first item's (the metadata
    // names none), not the header's.
    expect(job.pipeline).toMatchObject({
      steps: [
        { name: 'extract', branches: [{ model: 'gemini-2.5-pro', prompt: 'Facts in: {{input}}' }] },
        { name: 'judge', branches: [{ model: 'gemini-2.5-pro', prompt: 'Check {{extract}}' }] },
      ],
      onStepError: 'continue',
    });
    expect(job.model).toBe('gemini-2.5-pro');
    const items = [...db.items.get(jobOf('inbox/p.jsonl'))!.values()];
    // Indexes count items; a key defaults to the line's number in the file (the header is line 2).
    expect(items.map((i) => [i.index, i.key, i.state])).toEqual([
      [0, 'a', 'pending'],
      [1, '4', 'pending'],
    ]);
  });

  it('refuses the whole file on a bad header, with a summary naming the line and the field, and makes no job', async () => {
    // Arrange
    const { drop, intake, objects, db, capture } = setup();
    drop('inbox/bad.jsonl', ['{"steps":[{"name":"Extract","promt":"x"}]}', '{"prompt":"one"}']);

    // Act
    const outcome = await intake('inbox/bad.jsonl');

    // Assert
    expect(outcome).toMatchObject({ outcome: 'rejected' });
    const summary = JSON.parse(objects.objects.get('results/bad.jsonl.summary.json')!);
    expect(summary).toMatchObject({
      job: null,
      status: 'failed',
      error: { code: 400, status: 'INVALID_ARGUMENT' },
    });
    expect(summary.error.message).toMatch(/^line 1: pipeline header: /);
    expect(summary.error.message).toContain('steps[0].name: must be 1-40 characters');
    expect(summary.error.message).toContain('steps[0].promt: unknown field');
    expect(db.jobs.size).toBe(0);
    expect(capture.events('intake.rejected')).toHaveLength(1);
  });

  it('refuses a file that is only a header (no items)', async () => {
    const { drop, intake, db } = setup();
    drop('inbox/empty.jsonl', [HEADER]);

    expect(await intake('inbox/empty.jsonl')).toMatchObject({ outcome: 'rejected' });
    expect(db.jobs.size).toBe(0);
  });

  it('reads a `steps` line further down as an item: an error line for that line, no pipeline', async () => {
    const { drop, intake, jobOf, db } = setup();
    drop('inbox/late.jsonl', ['{"prompt":"one"}', HEADER]);

    const outcome = await intake('inbox/late.jsonl');

    expect(outcome).toMatchObject({ outcome: 'created', total: 2 });
    const job = db.jobs.get(jobOf('inbox/late.jsonl'))!;
    expect(job.pipeline).toBeUndefined();
    const items = [...db.items.get(jobOf('inbox/late.jsonl'))!.values()];
    expect(items.map((i) => [i.index, i.state])).toEqual([
      [0, 'pending'],
      [1, 'failed'],
    ]);
    expect(items[1]!.error?.message).toMatch(/^line 2: /);
  });
});

describe('what makes a line a pipeline header', () => {
  it.each([
    ['{"steps":[{"name":"a"}]}', true],
    ['{"steps":[],"onStepError":"fail"}', true],
    ['{"steps":[{"name":"a"}],"key":"k"}', false],
    ['{"steps":[{"name":"a"}],"prompt":"p"}', false],
    ['{"custom_id":"c","steps":[]}', false],
    ['{"prompt":"the steps are"}', false],
    ['["steps"]', false],
    ['{"steps": broken', false],
  ])('%s → %s', (text, header) => {
    expect(looksLikePipelineHeader(text)).toBe(header);
  });

  it('answers the fields of a good header, and a problem naming the line for a bad one', () => {
    expect(pipelineHeaderOf('{"prompt":"x"}', 1)).toBeUndefined();
    expect(pipelineHeaderOf(HEADER, 3)).toEqual({ fields: JSON.parse(HEADER) });
    expect(pipelineHeaderOf('{"steps":[]}', 3)).toEqual({
      problem: expect.stringMatching(/^line 3: pipeline header: steps: /),
    });
  });
});
