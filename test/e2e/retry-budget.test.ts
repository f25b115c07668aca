import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryKey } from '../../functions/api/jobs.js';
import { cli, cliEnv } from '../helpers/cli.js';
import {
  call,
  createJob,
  getJob,
  idToken,
  jobsClient,
  resultsJsonl,
  stack,
  waitForJob,
} from '../helpers/e2e.js';

/**
 * Re-runs and budgets through the local cloud: a partly failed job re-run (its changed lines, from
 * the CLI; its failed items, from the API), and a job that stops at its `maxCostUsd`.
 */
const RETRY_MODEL = 'gemini-e2e-retry';
/** The stand-in answers 400 INVALID_ARGUMENT to a prompt with this marker (infra/local/gemini/faults.ts). */
const FAIL = '[[fault:400]]';
/** Held by the stand-in, then 504 and retried: keeps a job running while it is there. */
const SLOW = '[[fault:timeout]]';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fanout-retry-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('POST /jobs/{id}/retry', () => {
  it('re-runs only what is missing, as a new job linked to the old one; the owner only', async () => {
    // Arrange: a job of four keyed prompts, two of which the stand-in refuses for good.
    const lines = ['a', 'b', 'c', 'd'].map((key) => ({
      key,
      prompt: key === 'b' || key === 'd' ? `retry ${key} ${FAIL}` : `retry ${key}`,
    }));
    const id = await createJob({ model: RETRY_MODEL, requests: lines });
    const first = await waitForJob(id, 60_000);
    const fixed = lines.map((l) => (l.key === 'b' ? { ...l, prompt: 'retry b, fixed' } : l));
    const file = join(dir, 'fixed.jsonl');
    await writeFile(file, `${fixed.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const url = stack().ingestUrl;
    const other = { authorization: `Bearer ${await idToken('retry-mallory@example.com')}` };

    // Act: the changed line from the CLI; every failed item from the API; another caller's attempt.
    const changed = await cli(['retry', id, '--only-changed', file, '--json', '--url', url], {
      env: cliEnv(),
    });
    const changedJob = JSON.parse(changed.stdout) as { id: string; total: number };
    const all = await jobsClient().retry(id, {}, { idempotencyKey: `retry-${id}` });
    const again = await jobsClient().retry(id, {}, { idempotencyKey: `retry-${id}` });
    const stranger = await call('POST', `/jobs/${id}/retry`, {}, other);
    const [changedDone, allDone] = await Promise.all([
      waitForJob(changedJob.id, 60_000),
      waitForJob(all.id, 60_000),
    ]);
    const changedLines = await resultsJsonl(changedJob.id);
    const allLines = await resultsJsonl(all.id);
    const old = await getJob(id);

    // Assert
    expect(first.counts).toMatchObject({ total: 4, succeeded: 2, failed: 2 });
    expect(changed.code).toBe(0);
    expect(changedJob.total).toBe(1);
    expect(changedDone).toMatchObject({
      status: 'succeeded',
      retryOf: id,
      counts: { total: 1, succeeded: 1 },
    });
    expect(changedLines.map(entryKey)).toEqual(['b']);
    expect(JSON.stringify(changedLines[0])).toContain('retry b, fixed');
    expect(all.total).toBe(2);
    expect(again.id).toBe(all.id);
    expect(allDone).toMatchObject({ retryOf: id, counts: { total: 2, failed: 2 } });
    // Keys kept, indexes the new job's own.
    expect(allLines.map((l) => [entryKey(l), l.index])).toEqual([
      ['b', 0],
      ['d', 1],
    ]);
    expect(old.retries).toEqual([changedJob.id, all.id]);
    expect(stranger.status).toBe(404);
  }, 120_000);

  it('answers 409 while the job is running, and 409 when nothing changed', async () => {
    // Arrange
    const id = await createJob({ model: RETRY_MODEL, requests: [{ key: 'slow', prompt: `retry ${SLOW}` }] });

    // Act
    const running = await call('POST', `/jobs/${id}/retry`, {});
    await jobsClient().cancel(id);
    await waitForJob(id, 30_000);
    const unchanged = await call('POST', `/jobs/${id}/retry`, {
      requests: [{ key: 'slow', prompt: `retry ${SLOW}` }],
    });

    // Assert
    expect(running.status).toBe(409);
    expect(JSON.stringify(running.body)).toMatch(/retry it once it has finished/);
    expect(unchanged.status).toBe(409);
    expect(JSON.stringify(unchanged.body)).toMatch(/Nothing to retry/);
  }, 60_000);
});

const BUDGET_MODEL = 'gemini-e2e-budget';

describe('maxCostUsd', () => {
  it('ends the items not yet sent cancelled, reason budget, once the budget is reached mid-job', async () => {
    // Arrange: what one answer costs on this model (same-length prompts cost the same), then a job
    // of twelve with room for three and a half; the model's 60 RPM sends about one a second.
    const probe = await waitForJob(
      await createJob({ model: BUDGET_MODEL, prompts: ['budget item 99'] }),
      30_000,
    );
    const answerUsd = probe.costUsd;
    const maxCostUsd = answerUsd * 3.5;
    const prompts = Array.from({ length: 12 }, (_, i) => `budget item ${String(i).padStart(2, '0')}`);

    // Act
    const id = await createJob({ model: BUDGET_MODEL, prompts, maxCostUsd });
    const job = await waitForJob(id, 60_000);
    const lines = await resultsJsonl(id);

    // Assert
    expect(answerUsd).toBeGreaterThan(0);
    expect(job.status).toBe('succeeded');
    expect(job.counts.succeeded).toBeGreaterThanOrEqual(1);
    expect(job.counts.succeeded + job.counts.cancelled).toBe(12);
    expect(job.counts.cancelled).toBeGreaterThanOrEqual(8);
    // The overshoot bound (core/budget.ts): rpm/60 × (read interval + a call) items, here about 3.
    expect(job.costUsd).toBeLessThanOrEqual(maxCostUsd + 3 * answerUsd);
    expect(job.budget).toEqual({ maxCostUsd, spentUsd: job.costUsd, stopped: true });
    expect(job.notice).toMatch(/Stopped at its budget/);
    const cancelled = lines.filter((l) => 'error' in l);
    expect(cancelled).toHaveLength(job.counts.cancelled);
    for (const line of cancelled)
      expect(line).toMatchObject({ error: { status: 'CANCELLED', reason: 'budget' } });
  }, 120_000);

  it('is refused for a batch job, naming the field', async () => {
    const answer = await call('POST', '/jobs', {
      model: BUDGET_MODEL,
      mode: 'batch',
      prompts: ['x'],
      maxCostUsd: 1,
    });

    expect(answer.status).toBe(400);
    expect(JSON.stringify(answer.body)).toContain('maxCostUsd');
  });
});
