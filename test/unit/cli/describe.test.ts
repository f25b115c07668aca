import { describe, expect, it } from 'vitest';
import { describeEstimate, describeJob, summarise, tierLine } from '../../../cli/describe.js';
import type { JobView } from '../../../functions/api/jobs.js';

const JOB: JobView = {
  id: 'job-1',
  status: 'succeeded',
  mode: 'flex',
  model: 'gemini-2.5-flash',
  source: 'api',
  counts: { total: 6, succeeded: 6, failed: 0, cancelled: 0, pending: 0 },
  usage: { promptTokens: 600, outputTokens: 300 },
  costUsd: 0.0016,
  tiers: { flex: { items: 4, costUsd: 0.0006 }, standard: { items: 2, costUsd: 0.001 } },
  savedUsd: 0.0006,
  deadline: '2026-12-06T12:30:00.000Z',
  createdAt: '2026-12-06T12:00:00.000Z',
  startedAt: '2026-12-06T12:00:01.000Z',
  finishedAt: '2026-12-06T12:00:20.000Z',
  notice: null,
  reconciled: { retasked: 0, failed: 0, orphans: 0, reenqueued: 0, cancelsResumed: 0, finishes: 0 },
};

describe('the CLI on tiers', () => {
  it('shows items and cost per tier, standard first, and the money saved against all-standard', () => {
    expect(tierLine(JOB)).toBe(
      'standard 2 items $0.0010, flex 4 items $0.0006 | saved $0.0006 against standard',
    );
  });

  it('says what Priority cost over standard', () => {
    expect(tierLine({ tiers: { priority: { items: 1, costUsd: 0.0018 } }, savedUsd: -0.0008 })).toBe(
      'priority 1 item $0.0018 | $0.0008 more than standard',
    );
  });

  it('puts the tiers and the deadline in status and in the summary after a watch', () => {
    expect(describeJob(JOB)).toMatch(/^tiers {4}standard 2 items/m);
    expect(describeJob(JOB)).toMatch(/^deadline 2026-12-06T12:30:00.000Z$/m);
    expect(summarise(JOB, [], 'gemini-fanout results job-1')).toMatch(
      /^tokens .* \| standard 2 items \$0\.0010, flex 4 items \$0\.0006 \| saved \$0\.0006 against standard$/m,
    );
  });

  it('leaves the tiers out for a job that has none', () => {
    const { tiers: _t, savedUsd: _s, ...old } = JOB;

    expect(describeJob(old)).not.toMatch(/tiers/);
  });
});

describe('the CLI on a dry run', () => {
  it('prints the path, tokens, cost per tier and the time the quota allows', () => {
    const text = describeEstimate({
      dryRun: true,
      model: 'gemini-2.5-flash',
      mode: 'flex',
      items: 30,
      tokens: { input: 300, outputAtMost: null, countedBy: 'estimate' },
      costUsd: { standard: 0.00009, flex: 0.000045, batch: 0.000045 },
      costIncludesOutput: false,
      quotaSeconds: 1.8,
    });

    expect(text).toContain('path     flex (gemini-2.5-flash)');
    expect(text).toContain('tokens   300 in (estimate), output not capped');
    expect(text).toContain('cost     standard $0.0001, flex $0.0000, batch $0.0000 (input only)');
    expect(text).toMatch(/^quota {4}at least /m);
  });
});
