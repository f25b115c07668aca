import { describe, expect, it } from 'vitest';
import { classifyFailure, parseDurationSeconds } from '../../../functions/core/outcome.js';
import { pacificMidnight, secondsUntilPacificMidnight } from '../../../functions/core/pacific-time.js';
import { quotaBody } from '../../helpers/gemini-errors.js';

describe('parseDurationSeconds', () => {
  it('reads protobuf durations', () => {
    expect(parseDurationSeconds('12s')).toBe(12);
    expect(parseDurationSeconds('0.5s')).toBe(0.5);
    expect(parseDurationSeconds(' 3s ')).toBe(3);
  });

  it('returns undefined for anything else', () => {
    for (const value of [undefined, '', '12', '12ms', '-1s', 's', '1m'])
      expect(parseDurationSeconds(value)).toBeUndefined();
  });
});

describe('secondsUntilPacificMidnight', () => {
  it('counts to the next midnight in Los Angeles on an ordinary summer day (PDT, UTC-7)', () => {
    // 2024-07-01 12:00 PDT
    expect(secondsUntilPacificMidnight(new Date('2024-07-01T19:00:00Z'))).toBe(12 * 3600);
  });

  it('counts to the next midnight in Los Angeles on an ordinary winter day (PST, UTC-8)', () => {
    // 2024-01-15 23:59:30 PST
    expect(secondsUntilPacificMidnight(new Date('2024-01-16T07:59:30Z'))).toBe(30);
  });

  it('is 86,400 seconds right at midnight, and never less than 1', () => {
    expect(secondsUntilPacificMidnight(new Date('2024-01-15T08:00:00Z'))).toBe(86_400);
    expect(secondsUntilPacificMidnight(new Date('2024-01-16T07:59:59.900Z'))).toBeGreaterThanOrEqual(1);
  });

  it('knows the day DST starts has 23 hours', () => {
    // 2024-03-10 00:30 PST; clocks jump 02:00 → 03:00; the next midnight is 2024-03-11 00:00 PDT = 07:00Z.
    const now = new Date('2024-03-10T08:30:00Z');
    const midnight = Date.parse('2024-03-11T07:00:00Z');

    expect(secondsUntilPacificMidnight(now)).toBe((midnight - now.getTime()) / 1000);
  });

  it('knows the day DST ends has 25 hours', () => {
    // 2024-11-03 00:30 PDT; clocks fall 02:00 → 01:00; the next midnight is 2024-11-04 00:00 PST = 08:00Z.
    const now = new Date('2024-11-03T07:30:00Z');
    const midnight = Date.parse('2024-11-04T08:00:00Z');

    expect(secondsUntilPacificMidnight(now)).toBe((midnight - now.getTime()) / 1000);
  });

  it('starts each Pacific day at its own midnight, the 23- and 25-hour days included', () => {
    // 2024-03-10 12:00 PDT: the day began at 00:00 PST (08:00Z) and ends at 00:00 PDT (07:00Z next day).
    const t = Date.parse('2024-03-10T19:00:00Z');

    expect(pacificMidnight(t)).toBe(Date.parse('2024-03-10T08:00:00Z'));
    expect(pacificMidnight(t, 1)).toBe(Date.parse('2024-03-11T07:00:00Z'));
    expect(
      pacificMidnight(Date.parse('2024-11-03T19:00:00Z'), 1) -
        pacificMidnight(Date.parse('2024-11-03T19:00:00Z')),
    ).toBe(25 * 3_600_000);
  });

  it('is right after the DST change on its day too', () => {
    // 2024-03-10 12:00 PDT → 12 hours left.
    expect(secondsUntilPacificMidnight(new Date('2024-03-10T19:00:00Z'))).toBe(12 * 3600);
  });
});

describe('classifyFailure', () => {
  const now = new Date('2024-07-01T19:00:00Z'); // noon in Los Angeles

  it('reads a per-day 429 as quota-day, waiting until midnight Pacific', () => {
    const failure = classifyFailure(429, quotaBody('GenerateRequestsPerDayPerProjectPerModel', '5s'), now);

    expect(failure).toEqual({
      kind: 'quota-day',
      retryAfterSeconds: 12 * 3600,
      error: {
        code: 429,
        status: 'RESOURCE_EXHAUSTED',
        message: 'You exceeded your current quota, please check your plan and billing details.',
      },
      hit: {
        quotaId: 'GenerateRequestsPerDayPerProjectPerModel',
        limit: 'requests-per-day',
        retryDelaySeconds: 5,
      },
    });
  });

  it.each([
    ['GenerateRequestsPerMinutePerProjectPerModel', '12s', 'requests-per-minute', 12],
    ['GenerateContentPaidTierInputTokensPerModelPerMinute', '31s', 'tokens-per-minute', 31],
    ['GenerateContentInputTokensPerModelPerMinute-FreeTier', undefined, 'tokens-per-minute', undefined],
    ['GenerateRequestsPerDayPerProjectPerModel-FreeTier', undefined, 'requests-per-day', undefined],
  ])('names the limit a 429 hit: %s (RetryInfo %s) is %s', (quotaId, delay, limit, seconds) => {
    const failure = classifyFailure(429, quotaBody(quotaId, delay), now);

    expect('hit' in failure && failure.hit).toEqual({
      quotaId,
      limit,
      ...(seconds !== undefined ? { retryDelaySeconds: seconds } : {}),
    });
  });

  it("names no limit for a 429 without details (upstream's capacity answer)", () => {
    const failure = classifyFailure(
      429,
      { error: { code: 429, status: 'RESOURCE_EXHAUSTED', message: 'busy' } },
      now,
    );

    expect(failure).toMatchObject({ kind: 'quota-minute', hit: { quotaId: 'unknown', limit: 'unknown' } });
  });

  it('reads a free-tier per-day quotaId as quota-day too', () => {
    const failure = classifyFailure(429, quotaBody('GenerateRequestsPerDayPerProjectPerModel-FreeTier'), now);

    expect(failure.kind).toBe('quota-day');
  });

  it("honours Gemini's RetryInfo on a per-minute 429", () => {
    const failure = classifyFailure(
      429,
      quotaBody('GenerateRequestsPerMinutePerProjectPerModel', '12s'),
      now,
    );

    expect(failure).toMatchObject({ kind: 'quota-minute', retryAfterSeconds: 12 });
  });

  it('reads a per-minute token quota as quota-minute', () => {
    const failure = classifyFailure(
      429,
      quotaBody('GenerateContentPaidTierInputTokensPerModelPerMinute', '31s'),
      now,
    );

    expect(failure).toMatchObject({ kind: 'quota-minute', retryAfterSeconds: 31 });
  });

  it('falls back to a default delay when a 429 has no RetryInfo', () => {
    const failure = classifyFailure(429, quotaBody('GenerateRequestsPerMinutePerProjectPerModel'), now);

    expect(failure.kind).toBe('quota-minute');
    if (failure.kind !== 'quota-minute') return;
    expect(failure.retryAfterSeconds).toBeGreaterThan(0);
    expect(failure.retryAfterSeconds).toBeLessThanOrEqual(60);
  });

  it('treats a 429 without any body as per-minute back-pressure', () => {
    const failure = classifyFailure(429, undefined, now);

    expect(failure).toMatchObject({
      kind: 'quota-minute',
      error: { code: 429, status: 'RESOURCE_EXHAUSTED' },
    });
  });

  it('treats 500, 503 and 408 as transient', () => {
    for (const status of [500, 503, 408, 504]) {
      expect(classifyFailure(status, undefined, now).kind).toBe('transient');
    }
    const unavailable = classifyFailure(
      503,
      {
        error: {
          code: 503,
          status: 'UNAVAILABLE',
          message: 'The model is overloaded. Please try again later.',
        },
      },
      now,
    );
    expect(unavailable.error).toEqual({
      code: 503,
      status: 'UNAVAILABLE',
      message: 'The model is overloaded. Please try again later.',
    });
  });

  it('treats a timeout or network fault (no status) as transient DEADLINE_EXCEEDED', () => {
    const failure = classifyFailure(undefined, undefined, now);

    expect(failure.kind).toBe('transient');
    expect(failure.error.status).toBe('DEADLINE_EXCEEDED');
    expect(failure.error.message).toMatch(/in time/);
  });

  it("treats 400, 403 and 404 as permanent, keeping the body's status and message", () => {
    const cases = [
      [400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.'],
      [403, 'PERMISSION_DENIED', "Method doesn't allow unregistered callers."],
      [404, 'NOT_FOUND', 'models/gemini-9 is not found for API version v1beta.'],
    ] as const;
    for (const [code, status, message] of cases) {
      const failure = classifyFailure(code, { error: { code, status, message } }, now);

      expect(failure).toEqual({ kind: 'permanent', error: { code, status, message } });
    }
  });

  it('names the status itself when the body has none', () => {
    expect(classifyFailure(400, undefined, now).error).toEqual({
      code: 400,
      status: 'INVALID_ARGUMENT',
      message: 'HTTP 400',
    });
  });
});
