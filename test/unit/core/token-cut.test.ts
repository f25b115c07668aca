import { describe, expect, it } from 'vitest';
import { reserveForJob } from '../../../functions/core/job-plan.js';
import {
  cutAfterTokens429,
  TOKEN_CUT_FLOOR,
  TOKEN_CUT_MS,
  withTokenCut,
} from '../../../functions/core/token-cut.js';

const T0 = Date.parse('2026-03-01T10:00:00Z');

describe('cutAfterTokens429', () => {
  it('starts a cut at 80% of the TPM for five minutes', () => {
    expect(cutAfterTokens429(undefined, T0)).toEqual({
      factor: 0.8,
      untilMs: T0 + TOKEN_CUT_MS,
      sinceMs: T0,
    });
  });

  it("extends, without deepening, a cut for the same minute's 429s", () => {
    // Arrange
    const cut = cutAfterTokens429(undefined, T0);
    // Act
    const burst = cutAfterTokens429(cut, T0 + 59_000);
    // Assert
    expect(burst).toEqual({ factor: 0.8, untilMs: T0 + 59_000 + TOKEN_CUT_MS, sinceMs: T0 });
  });

  it('deepens a holding cut a minute on, down to the floor', () => {
    // Arrange
    let cut = cutAfterTokens429(undefined, T0);
    // Act
    const factors: number[] = [];
    for (let minute = 1; minute <= 5; minute++) {
      cut = cutAfterTokens429(cut, T0 + minute * 60_000);
      factors.push(cut.factor);
    }
    // Assert
    expect(factors.map((f) => Math.round(f * 1000) / 1000)).toEqual([0.64, 0.512, 0.5, 0.5, 0.5]);
    expect(Math.min(...factors)).toBe(TOKEN_CUT_FLOOR);
  });

  it('starts afresh once a cut has run out', () => {
    // Arrange
    const cut = { factor: 0.5, untilMs: T0, sinceMs: T0 - TOKEN_CUT_MS };
    // Act / Assert
    expect(cutAfterTokens429(cut, T0).factor).toBe(0.8);
  });
});

describe('withTokenCut', () => {
  it('lowers the TPM while the cut holds, and only then', () => {
    // Arrange
    const quota = { rpm: 60, tpm: 1000 };
    const cut = { factor: 0.8, untilMs: T0 + 1000, sinceMs: T0 };
    // Act / Assert
    expect(withTokenCut(quota, cut, T0)).toEqual({ rpm: 60, tpm: 800 });
    expect(withTokenCut(quota, cut, T0 + 1000)).toBe(quota);
    expect(withTokenCut(quota, undefined, T0)).toBe(quota);
  });
});

describe('reserveForJob under a token cut', () => {
  it('plans fewer tokens a minute while the cut holds, and keeps the cut on the ledger', () => {
    // Arrange: 40 items of 100 tokens against 2,000 TPM.
    const quota = { rpm: 1000, tpm: 2000 };
    const tokens = Array<number>(40).fill(100);
    const cut = { factor: 0.5, untilMs: T0 + 10 * 60_000, sinceMs: T0 };
    // Act
    const plain = reserveForJob({ buckets: {} }, undefined, tokens, T0, quota, 1);
    const lowered = reserveForJob({ buckets: {}, tokenCut: cut }, undefined, tokens, T0, quota, 1);
    // Assert
    const inFirstMinute = (ms: number[]) => ms.filter((t) => t < T0 + 60_000).length;
    expect(inFirstMinute(plain.scheduleMs)).toBeGreaterThan(inFirstMinute(lowered.scheduleMs));
    expect(inFirstMinute(lowered.scheduleMs) * 100).toBeLessThanOrEqual(1000);
    expect(lowered.ledger.tokenCut).toEqual(cut);
    expect(plain.ledger.tokenCut).toBeUndefined();
  });
});
