import { describe, expect, it } from 'vitest';
import { createJob, resultsJsonl, stack, standInStats, waitForJob } from '../helpers/e2e.js';

/*
 * A three-step pipeline on two models with different quotas (test/fixtures/quotas.e2e.json): steps
 * one and three on A (600 RPM), step two on B (300 RPM). Each model's queue and ledger keep it under
 * its own limit (zero 429s), every call is made once, and the pipeline streams: items' step two
 * runs while later items' step one still does. 100 items by default (PIPELINE_E2E_ITEMS sets
 * another count; the 500 take minutes on a shared two-core machine). How near each model
 * runs to its limit is the pipeline benchmark's to measure: on a loaded machine, e2e timings say
 * more about the machine than about the product.
 */
const A = 'gemini-e2e-pipe-a';
const B = 'gemini-e2e-pipe-b';
const N = Number(process.env.PIPELINE_E2E_ITEMS ?? 100);

describe('a three-step pipeline on two models', () => {
  it('runs items through three steps with zero 429s, each model within its quota, the steps streaming', async () => {
    // Arrange
    const prompts = Array.from({ length: N }, (_, i) => `Text number ${i}`);
    const before = await standInStats();

    // Act
    const started = Date.now();
    const id = await createJob({
      model: A,
      prompts,
      steps: [
        { name: 'extract', prompt: 'Extract: {{input}}' },
        { name: 'summarise', model: B, prompt: 'Summarise: {{extract}}' },
        { name: 'check', prompt: 'Check: {{summarise}}' },
      ],
    });
    const job = await waitForJob(id, 120_000);
    const makespanMs = Date.now() - started;
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
      expect(now.admitted - (was?.admitted ?? 0)).toBe(calls);
      expect(now.peakRequestsPer60s).toBeLessThanOrEqual(rpm);
    }
    // The steps stream: some item's step two ended before the last item's step one did.
    const firstSummarise = events.findIndex((e) => e.step === 'summarise');
    const lastExtract = events.map((e) => e.step).lastIndexOf('extract');
    expect(firstSummarise).toBeGreaterThanOrEqual(0);
    expect(firstSummarise).toBeLessThan(lastExtract);
    expect(makespanMs).toBeLessThan(90_000);
  }, 180_000);
});

/** The job's `step` events, in the order the stream sent them (the order units ended). */
async function stepEvents(id: string): Promise<Array<{ step: string; index: number }>> {
  const text = await (await fetch(`${stack().ingestUrl}/jobs/${id}/events`)).text();
  return [...text.matchAll(/event: step\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!));
}
