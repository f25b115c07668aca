import { describe, expect, it } from 'vitest';
import type { ResultEntry } from '../../functions/api/jobs.js';
import {
  call,
  createJob,
  jobsClient,
  resultsJsonl,
  stack,
  standInStats,
  waitForJob,
} from '../helpers/e2e.js';

/*
 * Pipelines through the local cloud (each case on models of its own, test/fixtures/quotas.e2e.json):
 * a fan-out over three models and a judge, a JSON step read by the next (one answer repaired), a
 * failing step with and without `onStepError: "continue"`, cancel mid-pipeline, submit-time checks.
 */
const A = 'gemini-e2e-pipe-c';
const B = 'gemini-e2e-pipe-d';
const C = 'gemini-e2e-pipe-e';

const JSON_CONFIG = {
  responseMimeType: 'application/json',
  responseJsonSchema: {
    type: 'object',
    properties: { echo: { type: 'string' }, hash: { type: 'string' } },
    required: ['echo', 'hash'],
  },
};

/** The text of a result line's answer (first candidate). */
function textOf(response: unknown): string {
  return (response as { candidates: Array<{ content: { parts: Array<{ text: string }> } }> }).candidates[0]!
    .content.parts[0]!.text;
}

function stepsOf(line: ResultEntry): Record<string, unknown> {
  return (line as unknown as { steps: Record<string, unknown> }).steps;
}

describe('pipelines', () => {
  it('fans a step out over three models, each at its own quota, and a judge reads all their answers', async () => {
    // Arrange
    const prompts = Array.from({ length: 30 }, (_, i) => `Question ${i}`);
    const before = await standInStats();

    // Act
    const id = await createJob({
      model: A,
      prompts,
      steps: [
        { name: 'ask', models: [A, B, C], prompt: 'Answer: {{input}}' },
        { name: 'judge', model: A, prompt: 'Pick the best of:\n{{ask}}' },
      ],
    });
    const job = await waitForJob(id, 120_000);
    const lines = await resultsJsonl(id);
    const after = await standInStats();

    // Assert
    expect(job.status).toBe('succeeded');
    // Each model was called for its own branch (the judge on A too), once per unit, with no 429.
    for (const [model, calls] of [
      [A, 60],
      [B, 30],
      [C, 30],
    ] as const) {
      expect(after.models[model]!.admitted - (before.models[model]?.admitted ?? 0)).toBe(calls);
      expect(after.models[model]!.rejected429 - (before.models[model]?.rejected429 ?? 0)).toBe(0);
    }
    expect(lines.filter((l) => 'error' in l).slice(0, 1)).toEqual([]);
    expect(job.model).toBe(A);
    expect(job.counts).toMatchObject({ total: 30, succeeded: 30, failed: 0 });
    expect(job.steps?.map((s) => [s.name, s.counts.total, s.counts.succeeded])).toEqual([
      ['ask', 90, 90],
      ['judge', 30, 30],
    ]);
    expect(Object.keys(job.steps![0]!.byModel!).sort()).toEqual([A, B, C].sort());
    for (const [i, line] of lines.entries()) {
      const ask = stepsOf(line).ask as Array<{ model: string; response: unknown }>;
      expect(ask.map((a) => a.model)).toEqual([A, B, C]);
      // The judge's prompt held every branch's answer, each headed by its model.
      const judged = textOf((line as { response: unknown }).response);
      expect(judged).toContain(`echo: Pick the best of:\nAnswer 1 (${A}):\necho: Answer: Question ${i}`);
    }
  }, 180_000);

  it('checks a JSON step, repairs an answer that fails validation once, and the next step reads its fields', async () => {
    // Arrange
    const prompts = ['plain one', 'broken [[fault:bad-json-once]]', 'plain two'];

    // Act
    const id = await createJob({
      model: A,
      prompts,
      steps: [
        { name: 'extract', config: JSON_CONFIG, prompt: 'Extract {{input}}' },
        { name: 'use', prompt: 'Title: {{extract.echo}}' },
      ],
    });
    const job = await waitForJob(id, 60_000);
    const lines = await resultsJsonl(id);

    // Assert
    expect(job.counts).toMatchObject({ total: 3, succeeded: 3 });
    for (const [i, line] of lines.entries()) {
      const extract = stepsOf(line).extract as { response: unknown };
      const parsed = JSON.parse(textOf(extract.response)) as { echo: string };
      // The stand-in echoes every turn: a repaired answer's echo goes on past the first prompt.
      expect(parsed.echo.startsWith(`Extract ${prompts[i]}`)).toBe(true);
      if (i === 1) expect(parsed.echo).toContain('did not match the schema');
      expect(textOf((line as { response: unknown }).response)).toContain(
        `echo: Title: Extract ${prompts[i]}`,
      );
    }
  }, 90_000);

  it('ends an item at its failed step, or with onStepError continue runs the later steps with the failed one empty', async () => {
    // Arrange
    const prompts = ['fine', 'refused [[fault:400]]'];
    const steps = [
      { name: 'first', prompt: 'One {{input}}' },
      { name: 'second', prompt: 'Two <{{first}}>' },
    ];

    // Act
    const failId = await createJob({ model: A, prompts, steps });
    const goOnId = await createJob({ model: A, prompts, steps, onStepError: 'continue' });
    const failed = await waitForJob(failId, 60_000);
    const wentOn = await waitForJob(goOnId, 60_000);
    const failLines = await resultsJsonl(failId);
    const goOnLines = await resultsJsonl(goOnId);

    // Assert
    expect(failed.counts).toMatchObject({ total: 2, succeeded: 1, failed: 1 });
    expect(failLines[1]).toMatchObject({
      key: '1',
      error: { code: 400, message: expect.stringContaining('step first:') },
    });
    expect(Object.keys(stepsOf(failLines[1]!))).toEqual(['first']);
    // The second step of the failed item never ran: it counts as cancelled once the job ended.
    expect(failed.steps?.[1]?.counts).toMatchObject({ total: 2, succeeded: 1, cancelled: 1, pending: 0 });
    expect(wentOn.counts).toMatchObject({ total: 2, succeeded: 2, failed: 0 });
    expect(stepsOf(goOnLines[1]!).first).toMatchObject({ model: A, error: { code: 400 } });
    expect(textOf((goOnLines[1] as { response: unknown }).response)).toContain('echo: Two <>');
  }, 90_000);

  it("sends a step event per unit as it ends, before the item's result event", async () => {
    // Arrange
    const id = await createJob({
      model: A,
      prompts: ['x', 'y'],
      steps: [
        { name: 'one', models: [A, B], prompt: 'P {{input}}' },
        { name: 'two', prompt: 'Q {{one.1}}' },
      ],
    });
    await waitForJob(id, 60_000);

    // Act
    const res = await fetch(`${stack().ingestUrl}/jobs/${id}/events`);
    const text = await res.text();
    const events = [...text.matchAll(/id: (\S+)\nevent: (\w+)\ndata: (.*)\n/g)].map((m) => ({
      id: m[1]!,
      event: m[2]!,
      data: JSON.parse(m[3]!) as Record<string, unknown>,
    }));

    // Assert
    const ofItem = (index: number) =>
      events
        .filter((e) => e.data.index === index)
        .map((e) => (e.event === 'step' ? `${e.data.step}.${e.data.branch}` : 'result'));
    for (const index of [0, 1]) {
      const seen = ofItem(index);
      expect(seen.slice(0, 2).sort()).toEqual(['one.0', 'one.1']);
      expect(seen.slice(2)).toEqual(['two.0', 'result']);
    }
    expect(events.find((e) => e.event === 'step')?.data).toMatchObject({
      model: expect.any(String),
      response: {},
    });
    // Resuming after a step event goes on from there.
    const third = events[2]!;
    const resumed = await fetch(`${stack().ingestUrl}/jobs/${id}/events`, {
      headers: { 'last-event-id': third.id },
    });
    const rest = [...(await resumed.text()).matchAll(/id: (\S+)\n/g)].map((m) => m[1]);
    expect(rest).toEqual(events.slice(3).map((e) => e.id));
  }, 90_000);

  it('cancels mid-pipeline: pending units end, no call is made after, counts add up', async () => {
    // Arrange
    const prompts = Array.from({ length: 200 }, (_, i) => `slow ${i}`);
    const id = await createJob({
      model: C,
      prompts,
      steps: [
        { name: 'a', prompt: 'A {{input}}' },
        { name: 'b', model: A, prompt: 'B {{a}}' },
      ],
    });
    await waitForJob(id, 60_000, (j) => (j.steps?.[1]?.counts.succeeded ?? 0) >= 3);

    // Act
    await jobsClient().cancel(id);
    const cancelled = await waitForJob(id, 30_000);
    const admittedAtCancel = (await standInStats()).models[C]!.admitted;
    await new Promise((r) => setTimeout(r, 4000));
    const admittedLater = (await standInStats()).models[C]!.admitted;
    const lines = await resultsJsonl(id);

    // Assert
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.counts.pending).toBe(0);
    expect(cancelled.counts.succeeded + cancelled.counts.cancelled + cancelled.counts.failed).toBe(200);
    expect(cancelled.counts.cancelled).toBeGreaterThan(100);
    expect(admittedLater - admittedAtCancel).toBeLessThanOrEqual(2);
    expect(lines.filter((l) => 'error' in l && l.error.status === 'CANCELLED')).toHaveLength(
      cancelled.counts.cancelled,
    );
    for (const step of cancelled.steps!) expect(step.counts.pending).toBe(0);
  }, 90_000);

  it('refuses at submit: unknown names, cycles, fields of a step without a schema, unknown models, batch mode', async () => {
    // Act
    const bad = await call('POST', '/jobs', {
      model: A,
      prompts: ['p'],
      steps: [
        { name: 'one', prompt: '{{two}} and {{nope}}' },
        { name: 'two', model: 'gemini-unknown', prompt: '{{one.title}}' },
      ],
    });
    const batch = await call('POST', '/jobs', {
      model: A,
      mode: 'batch',
      prompts: ['p'],
      steps: [{ name: 'one' }],
    });
    const dry = await call('POST', '/jobs?dryRun=true', {
      model: A,
      prompts: ['p'],
      steps: [{ name: 'one' }],
    });

    // Assert
    expect(bad.status).toBe(400);
    const details = (bad.body.error as { details: Array<{ field: string; message: string }> }).details;
    expect(details.map((d) => d.field)).toEqual([
      'steps[1].model',
      'steps[0].prompt',
      'steps[0].prompt',
      'steps[1].prompt',
    ]);
    expect(details[1]!.message).toContain('cycle');
    expect(details[2]!.message).toContain('unknown name "nope"');
    expect(details[3]!.message).toContain('no JSON schema');
    expect(batch.status).toBe(400);
    expect((batch.body.error as { details: Array<{ field: string }> }).details[0]!.field).toBe('mode');
    expect(dry.status).toBe(400);
  });
});
