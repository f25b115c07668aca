import { CloudTasksClient } from '@google-cloud/tasks';
import { describe, expect, it } from 'vitest';
import { emulatorClientOptions } from '../../functions/platform/task-queue.js';
import { createJob, getJob, jobsClient, stack, standInStats, waitForJob } from '../helpers/e2e.js';

describe('daily quota and cancel', () => {
  it('pauses the model queue on a per-day 429 and says why on the job', async () => {
    // Arrange: gemini-e2e-day allows 5 requests a day.
    const model = 'gemini-e2e-day';
    const tasks = new CloudTasksClient(emulatorClientOptions(stack().tasksEmulatorHost));
    const queue = tasks.queuePath(stack().projectId, 'us-central1', 'fanout-gemini-e2e-day');

    // Act
    const id = await createJob({ model, prompts: Array.from({ length: 8 }, (_, i) => `daily ${i}`) });
    const paused = await waitForJob(id, 60_000, (j) => j.notice !== null && j.counts.succeeded === 5);
    const [state] = await tasks.getQueue({ name: queue });
    await new Promise((r) => setTimeout(r, 1500));
    const still = await getJob(id);
    const cancelled = await jobsClient().cancel(id);
    await tasks.resumeQueue({ name: queue });
    await tasks.close();

    // Assert
    expect(paused.notice).toMatch(/daily request quota of gemini-e2e-day is spent; resumes after/);
    expect(state.state).toBe('PAUSED');
    expect(still.counts).toMatchObject({ succeeded: 5, pending: 3 });
    expect(cancelled).toMatchObject({
      status: 'cancelled',
      counts: { succeeded: 5, cancelled: 3, pending: 0 },
    });
  }, 90_000);

  it('cancel ends pending items as cancelled and makes no further Gemini calls', async () => {
    // Arrange: gemini-e2e-cancel runs about one request a second.
    const model = 'gemini-e2e-cancel';
    const id = await createJob({ model, prompts: Array.from({ length: 30 }, (_, i) => `slow ${i}`) });
    await waitForJob(id, 30_000, (j) => j.counts.succeeded >= 2);

    // Act
    const res = await jobsClient().cancel(id);
    const callsAtCancel = (await standInStats()).models[model]!.requests;
    await new Promise((r) => setTimeout(r, 4000));
    const callsLater = (await standInStats()).models[model]!.requests;
    const job = await getJob(id);
    const again = await jobsClient().cancel(id);

    // Assert
    expect(res.status).toBe('cancelled');
    expect(job.status).toBe('cancelled');
    expect(job.counts.cancelled).toBeGreaterThanOrEqual(25);
    expect(job.counts.succeeded + job.counts.cancelled).toBe(30);
    // At most the one call already in flight when the cancel landed.
    expect(callsLater - callsAtCancel).toBeLessThanOrEqual(1);
    expect(again).toMatchObject({ status: 'cancelled', counts: job.counts });
  }, 60_000);

  it("gives a cancelled job's planned slots back, so the next job on the model starts at once", async () => {
    // Arrange: at about one request a second, 40 prompts are planned over some 40 s.
    const model = 'gemini-e2e-cancel';
    const first = await createJob({ model, prompts: Array.from({ length: 40 }, (_, i) => `planned ${i}`) });
    await waitForJob(first, 30_000, (j) => j.counts.succeeded >= 1);

    // Act
    await jobsClient().cancel(first);
    const started = Date.now();
    const next = await createJob({ model, prompts: ['after the cancel 1', 'after the cancel 2'] });
    const job = await waitForJob(next, 60_000);
    const tookMs = Date.now() - started;

    // Assert: had the 39 slots stayed taken, the new job would wait behind them for over 35 s.
    expect(job.counts.succeeded).toBe(2);
    expect(tookMs).toBeLessThan(20_000);
  }, 90_000);

  it("backs off a per-minute 429 by Gemini's retryDelay, and records it on the last attempt", async () => {
    // Arrange: the marker makes the stand-in answer 429 per-minute with retryDelay 1s, every time.
    const id = await createJob({ requests: [{ key: 'always-429', prompt: 'busy [[fault:429]]' }] });

    // Act
    const job = await waitForJob(id, 60_000);
    const page = await jobsClient().resultsPage(id);

    // Assert: 8 attempts (the e2e queue's maxAttempts) at least a second apart, then a recorded failure.
    const elapsedMs = Date.parse(job.finishedAt!) - Date.parse(job.startedAt!);
    expect(elapsedMs).toBeGreaterThanOrEqual(7000);
    expect(job.counts).toMatchObject({ failed: 1, pending: 0 });
    expect(page.results[0]).toMatchObject({
      key: 'always-429',
      error: { code: 429, status: 'RESOURCE_EXHAUSTED' },
    });
    // The job view counts them by the limit each named.
    const byQuota = quota429sOf(job)[job.model] ?? {};
    expect(byQuota.GenerateRequestsPerMinutePerProjectPerModel).toBeGreaterThanOrEqual(1);
    expect(Object.values(byQuota).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(8);
  }, 90_000);

  it('names a per-minute token 429 in the job view', async () => {
    // Arrange: refused for its tokens on every attempt. On a model of this file's own, run last: the
    // model then plans under a lowered token rate for a few minutes.
    const id = await createJob({
      model: 'gemini-e2e-cancel',
      requests: [{ key: 'too-many-tokens', prompt: 'long [[fault:429-tpm]]' }],
    });

    // Act
    const job = await waitForJob(id, 60_000);

    // Assert
    expect(job.counts).toMatchObject({ failed: 1, pending: 0 });
    expect(Object.keys(quota429sOf(job)[job.model] ?? {})).toContain(
      'GenerateContentPaidTierInputTokensPerModelPerMinute',
    );
  }, 90_000);
});

/** The job view's `quota429s` (model → quotaId → 429s), empty when absent. */
function quota429sOf(job: object): Record<string, Record<string, number>> {
  return (job as { quota429s?: Record<string, Record<string, number>> }).quota429s ?? {};
}
