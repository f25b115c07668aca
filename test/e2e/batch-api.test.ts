import { afterEach, describe, expect, it } from 'vitest';
import { jobIdForObject } from '../../functions/intake/handler.js';
import {
  configureStandIn,
  createJob,
  idToken,
  jobsClient,
  resultsJsonl,
  stack,
  waitForBucketJob,
  waitForJob,
} from '../helpers/e2e.js';
import { storageClientFor, waitForObject } from '../helpers/storage.js';

// Big sets through the Gemini Batch API, end to end on the local cloud: intake (or POST /jobs) stages
// the set, the scheduler tick (every second here) uploads it with the Files API's resumable protocol,
// creates the batches, polls them, and collects their shuffled output by key. The stand-in's batch
// behaviour is set per test and restored after.

const MODEL = 'gemini-e2e-batch';

function bucket() {
  const s = stack();
  return storageClientFor(s.storageEmulatorHost, s.projectId).bucket(s.bucket);
}

async function dropFile(name: string, lines: string[], metadata: Record<string, string>): Promise<string> {
  const file = bucket().file(name);
  await file.save(`${lines.join('\n')}\n`, { contentType: 'application/jsonl', metadata: { metadata } });
  const [meta] = await file.getMetadata();
  return jobIdForObject(stack().bucket, name, String(meta.generation));
}

/** The stand-in's batches whose displayName is the job's (`fanout-{jobId}-p{n}`). */
async function upstreamBatches(
  jobId: string,
): Promise<Array<{ name: string; state: string; stats?: unknown }>> {
  const out: Array<{ name: string; state: string; stats?: unknown }> = [];
  let token = '';
  for (;;) {
    const res = await fetch(
      `${stack().geminiBaseUrl}/v1beta/batches?pageSize=100${token ? `&pageToken=${token}` : ''}`,
      { headers: { 'x-goog-api-key': 'local' } },
    );
    const page = (await res.json()) as {
      operations?: Array<{
        name: string;
        metadata: { displayName?: string; state: string; batchStats?: unknown };
      }>;
      nextPageToken?: string;
    };
    for (const op of page.operations ?? []) {
      if (op.metadata.displayName?.startsWith(`fanout-${jobId}-`))
        out.push({ name: op.name, state: op.metadata.state, stats: op.metadata.batchStats });
    }
    if (!page.nextPageToken) return out;
    token = page.nextPageToken;
  }
}

afterEach(async () => {
  await configureStandIn({
    batch: { pendingMs: 200, runningMs: 1000, failedLineShare: 0, forceOutcome: null },
  });
});

describe('the Batch API path', () => {
  it('runs a 20,000-line file through several batches: every line in order, refused lines kept, batch prices', async () => {
    const name = `inbox/e2e/big-${Date.now()}.jsonl`;
    const lines = Array.from({ length: 20_000 }, (_, i) =>
      i % 2500 === 7
        ? JSON.stringify({ key: `k${i}`, prompt: `line ${i} [[fault:400]] fails inside the batch` })
        : i === 123
          ? '{"key": "broken"'
          : JSON.stringify({ key: `k${i}`, prompt: `batch line number ${i}, long enough for a few tokens` }),
    );
    const jobId = await dropFile(name, lines, { model: MODEL });

    // Intake streams the file before the job exists. A timeout says what the stand-in itself
    // reports, to tell a stuck batch from a stuck collector.
    const job = await waitForBucketJob(jobId, 360_000).catch(async (err: Error) => {
      throw new Error(`${err.message}\nupstream: ${JSON.stringify(await upstreamBatches(jobId))}`);
    });
    // A batch that went back to realtime says why (its fallback reason) in the failure message.
    expect({
      ...job,
      batches: job.batches?.map((b) => ({ state: b.state, fallback: b.fallback })),
    }).toMatchObject({
      status: 'succeeded',
      mode: 'batch',
      counts: { total: 20_000, succeeded: 19_991, failed: 9, cancelled: 0, pending: 0 },
      paths: { realtime: 0, batch: 19_999 },
      batches: job.batches?.map(() => ({ state: 'SUCCEEDED', fallback: null })),
    });
    // The model's enqueued-token cap splits the set; each batch was created once.
    expect(job.batches!.length).toBeGreaterThanOrEqual(2);
    expect(job.batches!.every((b) => b.state === 'SUCCEEDED' && b.fallback === null)).toBe(true);
    expect((await upstreamBatches(jobId)).length).toBe(job.batches!.length);
    // Half the realtime price: 0.3 $/M in, 2.5 $/M out at 50%.
    const full = (job.usage.promptTokens * 0.3 + job.usage.outputTokens * 2.5) / 1e6;
    expect(job.costUsd).toBeCloseTo(full * 0.5, 6);
    // Every answer is recorded under the batch tier, saving the other half against standard.
    expect(job.tiers).toEqual({ batch: { items: 19_991, costUsd: expect.closeTo(job.costUsd, 6) } });
    expect(job.savedUsd).toBeCloseTo(full * 0.5, 6);

    const results = (await waitForObject(bucket().file(name.replace(/^inbox\//, 'results/')), 60_000))
      .toString()
      .split('\n')
      .filter(Boolean)
      .map(
        (l) =>
          JSON.parse(l) as { key: string; index: number; response?: unknown; error?: { message: string } },
      );
    expect(results).toHaveLength(20_000);
    expect(results.map((r) => r.index)).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
    expect(results[124 - 1]!.error?.message).toMatch(/not valid JSON/);
    expect(results[7]!.error).toMatchObject({ status: 'INVALID_ARGUMENT' });
    expect(results[8]!.response).toBeDefined();
    expect(JSON.stringify(results[19_999])).toContain('batch line number 19999');
  }, 300_000);

  it('sends batch lines that failed with 429, 500 or 503 back through realtime, which answers them', async () => {
    const codes = [429, 503, 500];
    const id = await createJob({
      model: MODEL,
      mode: 'batch',
      prompts: Array.from({ length: 60 }, (_, i) =>
        i % 20 === 3 ? `flaky ${i} [[fault:batch-${codes[i % 3]}]]` : `steady ${i}`,
      ),
    });

    const job = await waitForJob(id, 120_000);
    expect(job).toMatchObject({
      status: 'succeeded',
      counts: { succeeded: 60, failed: 0, pending: 0 },
      paths: { realtime: 3, batch: 57 },
    });
    expect(job.batches![0]!.fallback).toMatch(/3 batch lines failed with a transient error/);
    const results = await resultsJsonl(id);
    expect(results.every((r) => 'response' in r)).toBe(true);
  }, 150_000);

  it('falls back to realtime with the reason when every upload of a part is answered 200 without a file', async () => {
    const id = await createJob({
      model: MODEL,
      mode: 'batch',
      prompts: ['first [[fault:upload-no-file]]', ...Array.from({ length: 29 }, (_, i) => `later ${i}`)],
    });

    const job = await waitForJob(id, 120_000);
    expect(job).toMatchObject({
      status: 'succeeded',
      counts: { succeeded: 30, failed: 0, pending: 0 },
      paths: { realtime: 30, batch: 0 },
    });
    expect(job.batches![0]!.fallback).toMatch(/names no file \(3 uploads\)/);
    expect(await upstreamBatches(id)).toHaveLength(0);
  }, 150_000);

  it('sends the items of an expired batch back to the realtime path, which answers them', async () => {
    await configureStandIn({ batch: { forceOutcome: 'expire' } });
    const id = await createJob({
      model: MODEL,
      mode: 'batch',
      prompts: Array.from({ length: 300 }, (_, i) => `expiring ${i}`),
    });

    const job = await waitForJob(id, 120_000);
    expect(job).toMatchObject({ status: 'succeeded', counts: { succeeded: 300, failed: 0, pending: 0 } });
    expect(job.batches![0]).toMatchObject({ state: 'EXPIRED', fallback: expect.stringMatching(/expired/) });
    expect(job.paths).toEqual({ realtime: 300, batch: 0 });
    const results = await resultsJsonl(id);
    expect(results.map((r) => r.index)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(results.every((r) => 'response' in r)).toBe(true);
  }, 150_000);

  it('cancels a batch still PENDING past the deadline; with onBatchFailure "fail" its items fail with the reason', async () => {
    await configureStandIn({ batch: { pendingMs: 600_000 } });
    const id = await createJob({
      model: MODEL,
      mode: 'batch',
      onBatchFailure: 'fail',
      prompts: Array.from({ length: 50 }, (_, i) => `stuck ${i}`),
    });

    const job = await waitForJob(id, 90_000);
    expect(job).toMatchObject({ status: 'succeeded', counts: { succeeded: 0, failed: 50, pending: 0 } });
    expect(job.batches![0]!.fallback).toMatch(/still pending/);
    const upstream = await upstreamBatches(id);
    expect(upstream.map((b) => b.state)).toEqual(['BATCH_STATE_CANCELLED']);
    const [first] = await resultsJsonl(id);
    expect(first).toMatchObject({
      error: { status: 'UNAVAILABLE', message: expect.stringMatching(/Batch API/) },
    });
  });

  it('cancels its batches upstream when the job is cancelled', async () => {
    await configureStandIn({ batch: { pendingMs: 600_000 } });
    const id = await createJob({
      model: MODEL,
      mode: 'batch',
      prompts: Array.from({ length: 40 }, (_, i) => `cancelled ${i}`),
    });
    await waitForJob(id, 30_000, (j) => j.batches?.[0]?.name !== null && j.batches?.[0]?.name !== undefined);

    const view = await jobsClient().cancel(id);
    expect(view.status).toBe('cancelled');

    await expect
      .poll(async () => (await upstreamBatches(id)).map((b) => b.state), { timeout: 20_000, interval: 500 })
      .toEqual(['BATCH_STATE_CANCELLED']);
    const job = await waitForJob(id, 20_000, (j) => j.counts.cancelled === 40);
    expect(job.counts).toMatchObject({ cancelled: 40, pending: 0 });
  }, 90_000);

  it('makes one batch when several scheduler ticks run at once', async () => {
    await configureStandIn({ batch: { pendingMs: 3000 } });
    const id = await createJob({
      model: MODEL,
      mode: 'batch',
      prompts: Array.from({ length: 100 }, (_, i) => `raced ${i}`),
    });
    // Five extra ticks at once, besides the local scheduler's own every second, each with the
    // scheduler's token as Cloud Scheduler sends it (tick refuses anyone else).
    const token = await idToken(stack().schedulerServiceAccount, { audience: stack().tickUrl });
    const ticks = await Promise.all(
      Array.from({ length: 5 }, () =>
        fetch(stack().tickUrl, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: '{}',
        }).then(async (r) => {
          await r.arrayBuffer();
          return r.status;
        }),
      ),
    );
    expect(ticks.every((status) => status !== 401)).toBe(true);

    const job = await waitForJob(id, 60_000);
    expect(job.counts).toMatchObject({ succeeded: 100, pending: 0 });
    expect(await upstreamBatches(id)).toHaveLength(1);
  }, 90_000);
});
