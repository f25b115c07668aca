import { describe, expect, it } from 'vitest';
import { entryKey } from '../../functions/api/jobs.js';
import { configureStandIn, createJob, resultsJsonl, standInStats, waitForJob } from '../helpers/e2e.js';

const MODEL = 'gemini-e2e-faults';

describe('realtime path under upstream faults and duplicate deliveries', () => {
  it('retries 500/503/timeouts/malformed answers to the same results; fails only what cannot succeed', async () => {
    // Arrange: a quarter of this model's calls fail transiently; two items fail on purpose.
    await configureStandIn({
      faults: {
        byModel: {
          [MODEL]: { internalShare: 0.1, unavailableShare: 0.08, timeoutShare: 0.03, malformedShare: 0.04 },
        },
      },
    });
    const requests = Array.from({ length: 150 }, (_, i) => ({ key: `k${i}`, prompt: `fault test ${i}` }));
    requests.push({ key: 'bad-request', prompt: 'refused [[fault:400]]' });
    requests.push({ key: 'always-500', prompt: 'never answers [[fault:500]]' });

    // Act
    const id = await createJob({ model: MODEL, requests });
    const job = await waitForJob(id, 180_000);
    const lines = await resultsJsonl(id);
    const stats = (await standInStats()).models[MODEL]!;
    await configureStandIn({ faults: { byModel: { [MODEL]: {} } } });

    // Assert
    expect(Object.values(stats.faults).reduce((a, b) => a + b, 0)).toBeGreaterThan(20);
    expect(job.status).toBe('succeeded');
    expect(job.counts).toEqual({ total: 152, succeeded: 150, failed: 2, cancelled: 0, pending: 0 });
    expect(lines).toHaveLength(152);
    lines.slice(0, 150).forEach((line, i) => {
      expect(entryKey(line)).toBe(`k${i}`);
      expect('response' in line && JSON.stringify(line.response)).toContain(`echo: fault test ${i}`);
    });
    expect(lines[150]).toMatchObject({
      key: 'bad-request',
      error: { code: 400, status: 'INVALID_ARGUMENT' },
    });
    // The last attempt records the failure instead of losing the item.
    expect(lines[151]).toMatchObject({ key: 'always-500', error: { code: 500, status: 'INTERNAL' } });
  }, 240_000);
});
