import { describe, expect, it } from 'vitest';
import { createJob, resultsJsonl, stack, standInStats, waitForJob } from '../helpers/e2e.js';

/*
 * A three-step pipeline on two models with different quotas (test/fixtures/quotas.e2e.json): steps
 * one and three on A (600 RPM), step two on B (300 RPM). Each model's queue and ledger keep it under
 * its own limit (zero 429s), every call is made once, and the pipeline streams: items' step two
 * runs while later items' step one still does, and each model runs near its own limit (its busiest
 * minute holds at least three quarters of its RPM: 500 items make 1,000 calls on A and 500 on B,
 * about 100 s of each model's quota). PIPELINE_E2E_ITEMS sets another count. How close to the bound
 * the makespan comes is the pipeline benchmark's to measure (BENCH_CASES=pipeline), not a timed test.
 */
const A = 'gemini-e2e-pipe-a';
const B = 'gemini-e2e-pipe-b';
const N = Number(process.env.PIPELINE_E2E_ITEMS ?? 500);

describe('a three-step pipeline on two models', () => {
  it('runs items through three steps with zero 429s, each model within its quota, the steps streaming', async () => {
    // Arrange
    const prompts = Array.from({ length: N }, (_, i) => `Text number ${i}`);
    const before = await standInStats();

    // Act
    const id = await createJob({
      model: A,
      prompts,
      steps: [
        { name: 'extract', prompt: 'Extract: {{input}}' },
        { name: 'summarise', model: B, prompt: 'Summarise: {{extract}}' },
        { name: 'check', prompt: 'Check: {{summarise}}' },
      ],
    });
    const job = await waitForJob(id, 360_000);
    const lines = await resultsJsonl(id);
    const after = await standInStats();
    const events = await stepEvents(id);

    // Assert
    expect(job.status).toBe('succeeded');
    expect(job.counts).toEqual({ total: N, succeeded: N, failed: 0, cancelled: 0, pending: 0 });
    expect(job.steps?.map((s) => [s.name, s.models, s.counts.succeeded])).toEqual([
      ['extract', [A], N],
      ['summarise', [B], N],
      ['check', [A], N],
    ]);
    lines.forEach((line, i) => {
      const text = JSON.stringify((line as { response: unknown }).response);
      expect(text).toContain(`echo: Check: echo: Summarise: echo: Extract: Text number ${i} `);
    });
    for (const [model, rpm, calls] of [
      [A, 600, 2 * N],
      [B, 300, N],
    ] as const) {
      const was = before.models[model];
      const now = after.models[model]!;
      expect(now.rejected429 - (was?.rejected429 ?? 0)).toBe(0);
      // On failure, which prompts were answered twice and when (a call past the worker's Gemini
      // timeout is called again; two deliveries of one item must never both call).
      const again = now.answeredAgainDetails.slice(was?.answeredAgainDetails.length ?? 0);
      expect(now.admitted - (was?.admitted ?? 0), `answered again: ${JSON.stringify(again)}`).toBe(calls);
      expect(now.peakRequestsPer60s).toBeLessThanOrEqual(rpm);
      // Near its own limit: a model held back by the other's pace would not fill a minute this much.
      if (N >= 500) expect(now.peakRequestsPer60s).toBeGreaterThanOrEqual(0.75 * rpm);
    }
    // The steps stream: some item's step two ended before the last item's step one did.
    const firstSummarise = events.findIndex((e) => e.step === 'summarise');
    const lastExtract = events.map((e) => e.step).lastIndexOf('extract');
    expect(firstSummarise).toBeGreaterThanOrEqual(0);
    expect(firstSummarise).toBeLessThan(lastExtract);
  }, 420_000);
});

/** The job's `step` events, in the order the stream sent them (the order units ended). */
async function stepEvents(id: string): Promise<Array<{ step: string; index: number }>> {
  const text = await (await fetch(`${stack().ingestUrl}/jobs/${id}/events`)).text();
  return [...text.matchAll(/event: step\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!));
}
