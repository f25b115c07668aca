import { describe, expect, it } from 'vitest';
import { entryKey } from '../../functions/api/jobs.js';
import { createJob, resultsJsonl, stack, standInStats, waitForJob } from '../helpers/e2e.js';

/**
 * Nothing is lost, on every path, through the whole local cloud: 2,000 items where Gemini answers
 * 10% with a 500 on every attempt, 5% with an answer over 1 MiB, and never answers 5% (they hang
 * past the worker's deadline); one function instance is killed twice mid-run (the local cloud
 * starts another, as Cloud Run would), and the e2e Cloud Tasks delivers 5% of tasks twice.
 */
const MODEL = 'gemini-e2e-chaos';
const N = 2000;
const BIG_BYTES = 1_200_000;

type Kind = 'ok' | '500' | 'big' | 'hang';
const kindOf = (i: number): Kind => {
  const r = i % 20;
  if (r < 2) return '500';
  if (r === 2) return 'big';
  if (r === 3) return 'hang';
  return 'ok';
};
const promptOf = (i: number) => {
  const marker = {
    ok: '',
    500: ' [[fault:500]]',
    big: ` [[answer-bytes:${BIG_BYTES}]]`,
    hang: ' [[fault:hang]]',
  };
  return `chaos item ${i}${marker[kindOf(i)]}`;
};

describe('a job through faults, big answers, hangs and dying instances', () => {
  it('ends succeeded with every item terminal exactly once, big answers whole, Gemini called once per answer', async () => {
    // Arrange
    const requests = Array.from({ length: N }, (_, i) => ({ key: `k${i}`, prompt: promptOf(i) }));
    const before = (await standInStats()).models[MODEL];

    // Act: run the job, killing a function instance twice while it runs.
    const id = await createJob({ model: MODEL, requests });
    await waitForJob(id, 120_000, ({ counts }) => counts.total - counts.pending >= 400);
    const kills: number[] = [];
    const kill = () => {
      kills.push(Date.now());
      process.kill(stack().functionsPid, 'SIGUSR2');
    };
    kill();
    await waitForJob(id, 120_000, ({ counts }) => counts.total - counts.pending >= 1200);
    kill();
    const job = await waitForJob(id, 240_000);
    const lines = await resultsJsonl(id);
    const stats = (await standInStats()).models[MODEL]!;

    // Assert: the job, its counts, and one line per item in input order.
    const expected = { ok: 0, 500: 0, big: 0, hang: 0 };
    for (let i = 0; i < N; i++) expected[kindOf(i)]++;
    expect(job.status).toBe('succeeded');
    expect(job.counts).toEqual({
      total: N,
      succeeded: expected.ok + expected.big,
      failed: expected[500] + expected.hang,
      cancelled: 0,
      pending: 0,
    });
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: N }, (_, i) => i));
    for (const [i, line] of lines.entries()) {
      const kind = kindOf(i);
      expect(entryKey(line)).toBe(`k${i}`);
      if (kind === '500') expect(line).toMatchObject({ error: { code: 500, status: 'INTERNAL' } });
      else if (kind === 'hang')
        expect(line).toMatchObject({ error: { code: 504, status: 'DEADLINE_EXCEEDED' } });
      else expect('response' in line).toBe(true);
      if (kind === 'big') {
        const text = (
          line as { response: { candidates: Array<{ content: { parts: Array<{ text: string }> } }> } }
        ).response.candidates[0]!.content.parts[0]!.text;
        expect(Buffer.byteLength(text)).toBe(BIG_BYTES);
      }
    }
    // Gemini answered each item at most once, but for answers that reached an instance which was
    // killed before it stored them (no system can keep those): a kill came between the first answer
    // and the second. (The stand-in may finish writing to a socket whose peer died a moment before it
    // learns so: hence the 2 s.)
    const seenBefore = new Set((before?.answeredAgainDetails ?? []).map((d) => `${d.prompt}@${d.againMs}`));
    const again = stats.answeredAgainDetails.filter((d) => !seenBefore.has(`${d.prompt}@${d.againMs}`));
    const cutByKill = (d: { firstMs: number; againMs: number }) =>
      kills.some((k) => d.firstMs - k < 2000 && d.againMs > k);
    expect({ kills, notCutByKill: again.filter((d) => !cutByKill(d)) }).toEqual({ kills, notCutByKill: [] });
    // Those are the items in flight on the killed instances: a few percent of the job at most.
    expect(again.length).toBeLessThanOrEqual(N * 0.05);
  }, 420_000);
});
