import { describe, expect, it } from 'vitest';
import { createJob, resultsJsonl, standInStats, waitForJob } from '../helpers/e2e.js';

const MODEL = 'gemini-e2e-tpm';
const TPM = 20_000;

describe('realtime path bound by tokens per minute', () => {
  it('spreads long prompts so no minute goes over the TPM quota, with zero 429s', async () => {
    // Arrange: 25 prompts of 4,000 bytes: 1,000 tokens each by the estimate, 1,250 as the strict
    // stand-in counts them; more than one minute's 20,000 either way.
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
    // The strict stand-in counts 3.2 Latin characters a token: 25% more than the estimate (bytes / 4).
    // The plan learned that from countTokens, so the minute above held with zero 429s all the same.
    expect(job.usage.promptTokens).toBe(31_250);
  }, 360_000);
});
