import { describe, expect, it } from 'vitest';
import { createJob, resultsJsonl, standInStats, waitForJob } from '../helpers/e2e.js';

const MODEL = 'gemini-e2e-tpm';
const TPM = 20_000;

describe('realtime path bound by tokens per minute', () => {
  it('spreads long prompts so no minute goes over the TPM quota, with zero 429s', async () => {
    // Arrange: 25 prompts of 1,000 tokens each (4,000 bytes): 25,000 tokens, more than one minute's 20,000.
    const prompts = Array.from({ length: 25 }, (_, i) => `${String(i).padStart(4, '0')}${'x'.repeat(3996)}`);

    // Act
    const id = await createJob({ model: MODEL, prompts });
    const job = await waitForJob(id, 320_000);
    const lines = await resultsJsonl(id);
    const stats = (await standInStats()).models[MODEL]!;

    // Assert
    expect(job.counts.succeeded).toBe(25);
    expect(lines.every((l) => 'response' in l)).toBe(true);
    expect(stats.rejected429).toBe(0);
    expect(stats.peakInputTokensPer60s).toBeLessThanOrEqual(TPM);
    expect(job.usage.promptTokens).toBe(25_000);
  }, 360_000);
});
