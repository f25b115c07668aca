import { describe, expect, it } from 'vitest';
import { unitJobId } from '../../../functions/core/pipeline.js';
import { intakeObject, jobIdForObject } from '../../../functions/intake/handler.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

// A bucket file with a pipeline header, run by the pipeline engine (intake/pipeline-file.ts), over
// the in-memory stores.

const BUCKET = 'b';
const FLASH = 'gemini-2.5-flash';
const PRO = 'gemini-2.5-pro';
const HEADER = JSON.stringify({
  steps: [
    { name: 'ask', models: [FLASH, PRO], prompt: 'Q: {{input}}' },
    { name: 'judge', model: PRO, prompt: 'J: {{ask}}' },
  ],
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
  const intake = (name: string, metadata?: Record<string, unknown>) =>
    intakeObject({ bucket: BUCKET, name, generation: '1', ...(metadata ? { metadata } : {}) }, deps);
  const jobOf = (name: string) => jobIdForObject(BUCKET, name, '1');
  return { ...world, drop, intake, jobOf, capture };
}

const prompt = (text: string) => JSON.stringify({ prompt: text });

describe('a bucket pipeline file, run by the engine', () => {
  it('stores the pipeline job, a unit job per (step, branch), step-0 units of the lines that run, and starts step 0', async () => {
    // Arrange
    const w = setup();
    w.drop('inbox/p.jsonl', [HEADER, prompt('one'), 'not json', prompt('three')]);
    const jobId = w.jobOf('inbox/p.jsonl');

    // Act
    const outcome = await w.intake('inbox/p.jsonl');

    // Assert
    expect(outcome).toMatchObject({ outcome: 'created', total: 3 });
    const job = w.db.jobs.get(jobId)!;
    expect(job).toMatchObject({ mode: 'realtime', total: 3, paths: { realtime: 2, batch: 0 } });
    expect(job.pipeline?.steps.map((s) => s.name)).toEqual(['ask', 'judge']);
    expect(job.enqueuedThrough).toBe(3);
    const units = (id: string) => [...(w.db.items.get(id)?.values() ?? [])];
    // The bad line (index 1) is an item born failed, and no unit: it never runs.
    for (const [m, model] of [FLASH, PRO].entries()) {
      const unitJob = w.db.jobs.get(unitJobId(jobId, 0, m))!;
      expect(unitJob).toMatchObject({ model, total: 3, unitOf: { jobId, step: 0, branch: m } });
      expect(units(unitJob.id).map((u) => [u.index, u.request.contents[0]?.parts[0]?.text])).toEqual([
        [0, 'Q: one'],
        [2, 'Q: three'],
      ]);
    }
    expect(w.db.jobs.get(unitJobId(jobId, 1, 0))).toMatchObject({ model: PRO, unitOf: { step: 1 } });
    expect(units(unitJobId(jobId, 1, 0))).toEqual([]);
    // Step 0's unit jobs are enqueued, the pipeline job itself is not; its finish watcher is set.
    expect([...w.tasks.controlTasks.keys()].sort()).toEqual(
      [`${jobId}-finish-0`, `${jobId}-s0b0-enqueue-0`, `${jobId}-s0b1-enqueue-0`].sort(),
    );
  });

  it('runs realtime whatever its size: auto does not send a big pipeline file to the Batch API', async () => {
    // Arrange: the test quotas send 1,000 items or more to batch.
    const w = setup();
    const lines = Array.from({ length: 1000 }, (_, n) => prompt(`p${n}`));
    w.drop('inbox/big.jsonl', [HEADER, ...lines]);

    // Act
    await w.intake('inbox/big.jsonl');

    // Assert
    const job = w.db.jobs.get(w.jobOf('inbox/big.jsonl'))!;
    expect(job).toMatchObject({ mode: 'realtime', total: 1000, paths: { realtime: 1000, batch: 0 } });
    expect(job.staged).toBeUndefined();
    expect(w.db.items.get(unitJobId(job.id, 0, 1))?.size).toBe(1000);
  });

  it.each([
    [
      'an unknown name in a template',
      [{ name: 'a' }, { name: 'b', prompt: '{{nope}}' }],
      /^line 1: pipeline header: steps\[1\]\.prompt: .*nope/,
    ],
    [
      'a step reading itself',
      [{ name: 'a', prompt: '{{a}}' }],
      /^line 1: pipeline header: steps\[0\]\.prompt: /,
    ],
    [
      'a model not served here',
      [{ name: 'a', model: 'gemini-0-nano' }],
      /^line 1: pipeline header: steps\[0\]\.model: .*gemini-0-nano/,
    ],
  ])('refuses the file for %s, naming line 1 and the field, and makes no job', async (_, steps, message) => {
    // Arrange
    const w = setup();
    w.drop('inbox/bad.jsonl', [JSON.stringify({ steps }), prompt('one')]);

    // Act
    const outcome = await w.intake('inbox/bad.jsonl');

    // Assert
    expect(outcome).toMatchObject({ outcome: 'rejected', message: expect.stringMatching(message) });
    const summary = JSON.parse(w.objects.objects.get('results/bad.jsonl.summary.json')!);
    expect(summary).toMatchObject({ job: null, status: 'failed', error: { code: 400 } });
    expect(w.db.jobs.size).toBe(0);
  });

  it('makes a batch pipeline of a file whose metadata asks for mode batch: its items only, no unit yet', async () => {
    const w = setup();
    w.drop('inbox/m.jsonl', [HEADER, prompt('one')]);

    const outcome = await w.intake('inbox/m.jsonl', { mode: 'batch' });

    expect(outcome).toMatchObject({ outcome: 'created' });
    const job = [...w.db.jobs.values()].find((j) => j.pipeline);
    expect(job).toMatchObject({ mode: 'batch', paths: { realtime: 0, batch: 1 } });
    const units = [...w.db.jobs.values()].filter((j) => j.unitOf);
    expect(units.every((u) => u.mode === 'batch')).toBe(true);
    expect(await w.db.stores.items.list(units[0]!.id, { limit: 10 })).toHaveLength(0);
  });

  it('finishes a pipeline file whose every line is bad at once, its unit jobs with it', async () => {
    // Arrange
    const w = setup();
    w.drop('inbox/allbad.jsonl', [HEADER, 'not json', '{"prompt": 5}']);
    const jobId = w.jobOf('inbox/allbad.jsonl');

    // Act
    await w.intake('inbox/allbad.jsonl');

    // Assert
    expect(w.db.jobs.get(jobId)).toMatchObject({ status: 'succeeded', total: 2 });
    for (const id of [unitJobId(jobId, 0, 0), unitJobId(jobId, 0, 1), unitJobId(jobId, 1, 0)])
      expect(w.db.jobs.get(id)?.status).toBe('succeeded');
    expect([...w.tasks.controlTasks.keys()].filter((k) => k.includes('enqueue'))).toEqual([]);
  });

  it.each([
    [2, 1],
    [500, 2],
  ])(
    "plans step 0 to its end, though the file's last line, bad, has no unit (%i good lines, %i pages)",
    async (good, pages) => {
      // Arrange: 500 good lines fill a page exactly, and the next page finds nothing.
      const w = setup();
      const lines = Array.from({ length: good }, (_, n) => prompt(`p${n}`));
      w.drop('inbox/tail.jsonl', [HEADER, ...lines, 'not json']);
      const jobId = w.jobOf('inbox/tail.jsonl');
      await w.intake('inbox/tail.jsonl');
      const unitJob = w.db.jobs.get(unitJobId(jobId, 0, 0))!;

      // Act
      let through = 0;
      for (let page = 0; page < pages && through < unitJob.total; page++)
        through = (await w.planner.enqueuePage(w.db.jobs.get(unitJob.id)!, through)).through;

      // Assert: enqueuing is done, so the reconciler does not restart it as stalled.
      expect(w.db.jobs.get(unitJob.id)!.enqueuedThrough).toBe(good + 1);
      expect([...w.tasks.itemTasks.values()].filter((t) => t.jobId === unitJob.id)).toHaveLength(good);
    },
  );
});
