import { afterEach, describe, expect, it } from 'vitest';
import type { ResultEntry } from '../../functions/api/jobs.js';
import { jobIdForObject } from '../../functions/intake/handler.js';
import {
  configureStandIn,
  createJob,
  getJob,
  resultsJsonl,
  stack,
  standInStats,
  waitForBucketJob,
  waitForJob,
} from '../helpers/e2e.js';
import { storageClientFor, waitForObject } from '../helpers/storage.js';

/*
 * A pipeline through the Batch API on the local cloud (the global stack: a tick every second, the
 * stand-in's batches pending 200 ms then running 1 s): `mode: "batch"` sends each step as one batch
 * per model, the second step only once every item's first step has ended, and no unit takes the
 * realtime path. Models of their own (test/fixtures/quotas.e2e.json), so the stand-in's counts are
 * this file's.
 */
const A = 'gemini-e2e-pipebatch-a';
const B = 'gemini-e2e-pipebatch-b';

interface Upstream {
  displayName: string;
  model: string;
  state: string;
  createTime: string;
  endTime?: string;
  requestCount: number;
}

/** The stand-in's batches whose displayName starts with `fanout-{jobId}-` (its unit jobs' batches). */
async function upstreamBatches(jobId: string): Promise<Upstream[]> {
  const out: Upstream[] = [];
  let token = '';
  for (;;) {
    const res = await fetch(
      `${stack().geminiBaseUrl}/v1beta/batches?pageSize=100${token ? `&pageToken=${token}` : ''}`,
      { headers: { 'x-goog-api-key': 'local' } },
    );
    const page = (await res.json()) as {
      operations?: Array<{
        metadata: Omit<Upstream, 'requestCount' | 'model'> & {
          model: string;
          batchStats: { requestCount: string };
        };
      }>;
      nextPageToken?: string;
    };
    for (const { metadata: m } of page.operations ?? []) {
      if (!m.displayName?.startsWith(`fanout-${jobId}-`)) continue;
      out.push({
        displayName: m.displayName,
        model: m.model.replace(/^models\//, ''),
        state: m.state,
        createTime: m.createTime,
        ...(m.endTime ? { endTime: m.endTime } : {}),
        requestCount: Number(m.batchStats.requestCount),
      });
    }
    if (!page.nextPageToken) return out;
    token = page.nextPageToken;
  }
}

/**
 * When each unit of step `step` ended (ms), from its `step` event's id `{micros}.{itemId}.s{n}b{m}`:
 * the job's event stream read raw (the typed client yields only `result` and `done` events), to its
 * end (the job has ended: the stream sends every event, then `done`, and closes).
 */
async function unitEnds(jobId: string, step: number): Promise<number[]> {
  const res = await fetch(`${stack().ingestUrl}/jobs/${jobId}/events`, {
    headers: { accept: 'text/event-stream' },
  });
  const ends: number[] = [];
  for (const block of (await res.text()).split('\n\n')) {
    const id = /^id: (\d+)\.\d+\.s(\d+)b\d+$/m.exec(block);
    if (/^event: step$/m.test(block) && id && Number(id[2]) === step) ends.push(Number(id[1]) / 1000);
  }
  return ends;
}

function stepsOf(line: ResultEntry): Record<string, Array<{ model: string; response?: unknown }>> {
  return (line as unknown as { steps: Record<string, Array<{ model: string; response?: unknown }>> }).steps;
}

afterEach(async () => {
  await configureStandIn({ batch: { forceOutcome: null } });
});

describe('a pipeline through the Batch API', () => {
  it('sends each step as one batch per model, the second only once every first-step unit has ended', async () => {
    // Arrange
    const prompts = Array.from({ length: 40 }, (_, i) => `River number ${i}`);
    const before = await standInStats();

    // Act
    const id = await createJob({
      model: A,
      mode: 'batch',
      prompts,
      steps: [
        { name: 'describe', models: [A, B], prompt: 'Describe: {{input}}' },
        { name: 'compare', models: [A, B], prompt: 'Compare: {{describe.0}} | {{describe.1}}' },
      ],
    });
    const job = await waitForJob(id, 180_000);
    const lines = await resultsJsonl(id);
    const after = await standInStats();
    const batches = await upstreamBatches(id);
    const firstEnds = await unitEnds(id, 0);

    // Assert: the job, each step a batch per model and no realtime call for either model.
    expect(job).toMatchObject({ status: 'succeeded', mode: 'batch' });
    expect(job.counts).toMatchObject({ total: 40, succeeded: 40, failed: 0, pending: 0 });
    expect(job.steps?.map((s) => [s.name, s.counts.total, s.counts.succeeded])).toEqual([
      ['describe', 80, 80],
      ['compare', 80, 80],
    ]);
    for (const model of [A, B]) {
      const was = before.models[model];
      const now = after.models[model]!;
      expect(now.admitted - (was?.admitted ?? 0)).toBe(0);
      expect(now.batchesCreated - (was?.batchesCreated ?? 0)).toBe(2);
      expect(now.batchRequests - (was?.batchRequests ?? 0)).toBe(80);
    }
    const names = batches.map((b) => [b.displayName.slice(id.length + 8), b.model, b.requestCount]);
    expect(names.sort()).toEqual([
      ['s0b0-p0', A, 40],
      ['s0b1-p0', B, 40],
      ['s1b0-p0', A, 40],
      ['s1b1-p0', B, 40],
    ]);
    expect(batches.every((b) => b.state === 'BATCH_STATE_SUCCEEDED')).toBe(true);
    // The job view shows them too, each with its upstream stats (the last batch's run is closed by a
    // tick after its answers ended the job: on a loaded machine, some seconds later).
    expect(job.paths).toEqual({ realtime: 0, batch: 40 });
    await expect
      .poll(async () => (await getJob(id)).batches?.map((b) => [b.state, b.items, b.stats?.requestCount]), {
        timeout: 30_000,
      })
      .toEqual(Array.from({ length: 4 }, () => ['SUCCEEDED', 40, 40]));

    // The second step's batches were created after every first-step unit had ended (been recorded).
    const second = batches.filter((b) => /-s1b\d-p0$/.test(b.displayName));
    const firstCreated = Math.min(...second.map((b) => Date.parse(b.createTime)));
    expect(firstEnds).toHaveLength(80);
    expect(Math.max(...firstEnds)).toBeLessThan(firstCreated);

    // Every item's line has both steps, each branch answered, the second step reading the first.
    expect(lines).toHaveLength(40);
    for (const [i, line] of lines.entries()) {
      const steps = stepsOf(line);
      expect(line.index).toBe(i);
      expect(steps.describe?.map((b) => b.model)).toEqual([A, B]);
      expect(steps.compare?.map((b) => b.model)).toEqual([A, B]);
      expect([...steps.describe!, ...steps.compare!].every((b) => b.response !== undefined)).toBe(true);
      expect(JSON.stringify(steps.describe)).toContain(`River number ${i}`);
      expect('response' in line).toBe(true);
    }
  }, 240_000);

  it('sends the units of an expired step batch to the queues, and the item still goes on to the next step', async () => {
    // Arrange: every batch expires upstream (onBatchFailure "realtime", the default)
    await configureStandIn({ batch: { forceOutcome: 'expire' } });
    const before = await standInStats();

    // Act
    const id = await createJob({
      model: A,
      mode: 'batch',
      prompts: Array.from({ length: 10 }, (_, i) => `Lake number ${i}`),
      steps: [
        { name: 'first', prompt: 'One: {{input}}' },
        { name: 'second', model: B, prompt: 'Two: {{first}}' },
      ],
    });
    const job = await waitForJob(id, 120_000);
    const lines = await resultsJsonl(id);
    const after = await standInStats();

    // Assert: each step's batch expired, its units answered on the queues, in step order.
    expect(job.counts).toMatchObject({ total: 10, succeeded: 10, failed: 0, pending: 0 });
    for (const model of [A, B]) {
      expect(after.models[model]!.admitted - (before.models[model]?.admitted ?? 0)).toBe(10);
      expect(after.models[model]!.batchesCreated - (before.models[model]?.batchesCreated ?? 0)).toBe(1);
    }
    await expect
      .poll(async () => (await getJob(id)).batches?.map((b) => [b.state, b.fallback]), { timeout: 10_000 })
      .toEqual([
        ['EXPIRED', expect.stringMatching(/expired/)],
        ['EXPIRED', expect.stringMatching(/expired/)],
      ]);
    for (const [i, line] of lines.entries()) {
      const steps = line as unknown as { steps: Record<string, { response?: unknown }> };
      expect(JSON.stringify(steps.steps.second?.response)).toContain(`Lake number ${i}`);
    }
  }, 150_000);

  it('runs a bucket pipeline file whose metadata says mode batch: each step a batch, its steps in the results file', async () => {
    // Arrange
    const s = stack();
    const file = storageClientFor(s.storageEmulatorHost, s.projectId)
      .bucket(s.bucket)
      .file(`inbox/e2e/pipe-batch-${Date.now()}.jsonl`);
    const header = {
      steps: [
        { name: 'first', prompt: 'One: {{input}}' },
        { name: 'second', model: B, prompt: 'Two: {{first}}' },
      ],
    };
    const lines = [
      JSON.stringify(header),
      ...Array.from({ length: 12 }, (_, i) => JSON.stringify({ key: `k${i}`, prompt: `Sea ${i}` })),
    ];
    const before = await standInStats();

    // Act
    await file.save(`${lines.join('\n')}\n`, {
      contentType: 'application/jsonl',
      metadata: { metadata: { model: A, mode: 'batch' } },
    });
    const [meta] = await file.getMetadata();
    const id = jobIdForObject(s.bucket, file.name, String(meta.generation));
    const job = await waitForBucketJob(id, 120_000);
    const resultsFile = file.bucket.file(file.name.replace(/^inbox\//, 'results/'));
    const results = (await waitForObject(resultsFile, 60_000))
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { key: string; steps: Record<string, { response?: unknown }> });
    const after = await standInStats();

    // Assert
    expect(job).toMatchObject({ status: 'succeeded', mode: 'batch', counts: { total: 12, succeeded: 12 } });
    for (const model of [A, B]) {
      expect(after.models[model]!.admitted - (before.models[model]?.admitted ?? 0)).toBe(0);
      expect(after.models[model]!.batchesCreated - (before.models[model]?.batchesCreated ?? 0)).toBe(1);
    }
    expect(results.map((r) => r.key)).toEqual(Array.from({ length: 12 }, (_, i) => `k${i}`));
    for (const [i, line] of results.entries())
      expect(JSON.stringify(line.steps.second?.response)).toContain(`Sea ${i}`);
  }, 150_000);
});
