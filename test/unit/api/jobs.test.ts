import { describe, expect, it } from 'vitest';
import {
  createJobSchema,
  errorBodySchema,
  jobViewSchema,
  linksFor,
  resultEntrySchema,
  resultLineSchema,
} from '../../../functions/api/jobs.js';
import { jobViewFixture } from '../../fixtures/job-view.js';

const view = jobViewFixture({
  status: 'succeeded',
  counts: { total: 2, succeeded: 1, failed: 1, cancelled: 0, pending: 0 },
  finishedAt: '2025-01-01T00:00:02.000Z',
});

describe('result lines', () => {
  it.each([
    ['a success line', { key: 'a', index: 0, response: { candidates: [] } }],
    [
      'an error line',
      { key: 'b', index: 1, error: { code: 429, status: 'RESOURCE_EXHAUSTED', message: 'q' } },
    ],
    ['a pending entry', { key: 'c', index: 2, state: 'pending' }],
  ])('reads %s back unchanged', (_name, line) => {
    expect(resultEntrySchema.parse(line)).toEqual(line);
  });

  it('refuses a line with neither response nor error, and a pending entry as a finished result', () => {
    expect(resultEntrySchema.safeParse({ key: 'a', index: 0 }).success).toBe(false);
    expect(resultLineSchema.safeParse({ key: 'c', index: 2, state: 'pending' }).success).toBe(false);
  });

  it('refuses an error without its status', () => {
    const line = { key: 'b', index: 1, error: { code: 500, message: 'boom' } };

    expect(resultLineSchema.safeParse(line).success).toBe(false);
  });
});

describe('job view', () => {
  it('keeps fields a newer server adds, at any depth', () => {
    const newer = {
      ...view,
      stages: [{ name: 'translate' }],
      reconciled: { ...view.reconciled, staleLeases: 1 },
      counts: { ...view.counts, retried: 3 },
    };

    expect(jobViewSchema.parse(newer)).toEqual(newer);
  });

  it.each([
    ['a missing count', { ...view, counts: { total: 2, succeeded: 1, failed: 1, cancelled: 0 } }],
    ['a timestamp that is not ISO 8601', { ...view, createdAt: 'yesterday' }],
    ['a negative cost', { ...view, costUsd: -1 }],
  ])('refuses %s', (_name, drifted) => {
    expect(jobViewSchema.safeParse(drifted).success).toBe(false);
  });
});

describe('requests and errors', () => {
  it('defaults mode to auto and names an unknown field', () => {
    expect(createJobSchema.parse({ prompts: ['a'] })).toEqual({ mode: 'auto', prompts: ['a'] });
    expect(createJobSchema.safeParse({ prompts: ['a'], temperature: 1 }).error?.issues[0]?.message).toMatch(
      /temperature/,
    );
  });

  it('reads an error body with its field details', () => {
    const body = {
      error: { code: 400, status: 'INVALID_ARGUMENT', message: 'Invalid job.', details: [{ field: 'x' }] },
    };

    expect(errorBodySchema.parse(body)).toEqual(body);
    expect(errorBodySchema.safeParse({ message: 'Bad gateway' }).success).toBe(false);
  });

  it('spells the paths of a job', () => {
    expect(linksFor('job-1')).toEqual({
      self: '/jobs/job-1',
      results: '/jobs/job-1/results',
      events: '/jobs/job-1/events',
      cancel: '/jobs/job-1/cancel',
    });
  });
});
