import { describe, expect, it } from 'vitest';
import { entryKey } from '../../functions/api/jobs.js';
import { createJob, readEvents, resultsJsonl, standInStats, waitForJob } from '../helpers/e2e.js';

const MODEL = 'gemini-e2e-rpm';
const RPM = 600;

describe('realtime path at the edge of a 600 RPM quota', () => {
  it('runs 1,000 prompts with zero 429s, never over the quota, every result once and in order', async () => {
    // Arrange
    const prompts = Array.from({ length: 1000 }, (_, i) => `Summarise item ${i} in one line.`);
    const before = (await standInStats()).models[MODEL];

    // Act
    const id = await createJob({ model: MODEL, prompts });
    const events = readEvents(id);
    const job = await waitForJob(id, 240_000);
    const lines = await resultsJsonl(id);
    const streamed = await events;
    const after = (await standInStats()).models[MODEL]!;

    // Assert
    expect(job.status).toBe('succeeded');
    expect(job.counts).toEqual({ total: 1000, succeeded: 1000, failed: 0, cancelled: 0, pending: 0 });
    expect(lines.map((l) => l.index)).toEqual(prompts.map((_, i) => i));
    lines.forEach((line, i) => {
      expect(line).toMatchObject({
        key: String(i),
        response: {
          candidates: [
            {
              content: {
                parts: [{ text: expect.stringContaining(`echo: Summarise item ${i} in one line.`) }],
              },
            },
          ],
        },
      });
    });
    expect(after.rejected429 - (before?.rejected429 ?? 0)).toBe(0);
    expect(after.peakRequestsPer60s).toBeLessThanOrEqual(RPM);
    // Duplicate deliveries (the e2e Cloud Tasks delivers 5% twice) never reach Gemini twice.
    expect(after.admitted - (before?.admitted ?? 0)).toBe(1000);
    const keys = streamed.results.map((r) => entryKey(r.data));
    const repeated = keys.filter((k, i) => keys.indexOf(k) !== i);
    const missing = prompts.map((_, i) => String(i)).filter((k) => !keys.includes(k));
    expect({ repeated, missing }).toEqual({ repeated: [], missing: [] });
    expect(streamed.results).toHaveLength(1000);
    expect(streamed.done?.status).toBe('succeeded');
    expect(job.usage.promptTokens).toBeGreaterThan(0);
    expect(job.costUsd).toBeGreaterThan(0);
  }, 300_000);
});
