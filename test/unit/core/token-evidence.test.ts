import { describe, expect, it } from 'vitest';
import {
  addEvidence,
  DEFAULT_MARGIN,
  evidenceOf,
  learnedRatio,
  NO_EVIDENCE,
  ratioStats,
  sampleAgrees,
  windowItems,
} from '../../../functions/core/token-evidence.js';
import { CALIBRATION_MARGIN, pageRatio } from '../../../functions/core/tokens.js';

// The token plan's margin is earned: what answers count against the estimate, summed per job, gives
// the window's aggregate ratio and a spread that shrinks with evidence.

/** `n` answered items of 1,000 estimated tokens, counted `ratio` × the estimate ± `noise` (deterministic). */
function answers(n: number, ratio: number, noise: number, from = 0) {
  return Array.from({ length: n }, (_, i) => {
    const u = Math.sin((i + from) * 12.9898) * 43758.5453;
    const jitter = (u - Math.floor(u)) * 2 - 1;
    return { estimated: 1000, counted: Math.round(1000 * ratio * (1 + noise * jitter)) };
  });
}

/** The margin over the mean the learned ratio keeps, for a window of `windowN` items. */
const margin = (pairs: ReturnType<typeof answers>, windowN = 60) => {
  const ev = evidenceOf(pairs);
  return learnedRatio(ev, windowN)! / ratioStats(ev)!.ratio - 1;
};

describe('token evidence: the margin the plan earns', () => {
  it('sums shard by shard to the same evidence as item by item', () => {
    const pairs = answers(50, 1.3, 0.1);
    const halves = addEvidence(evidenceOf(pairs.slice(0, 20)), evidenceOf(pairs.slice(20)));
    const whole = evidenceOf(pairs);

    for (const k of Object.keys(whole) as Array<keyof typeof whole>)
      expect(halves[k]).toBeCloseTo(whole[k], 6);
  });

  it('learns nothing below the minimum of answered items', () => {
    expect(learnedRatio(evidenceOf(answers(DEFAULT_MARGIN.minItems - 1, 1.3, 0.1)), 60)).toBeUndefined();
    expect(learnedRatio(NO_EVIDENCE, 60)).toBeUndefined();
    expect(learnedRatio(evidenceOf(answers(DEFAULT_MARGIN.minItems, 1.3, 0.1)), 60)).toBeDefined();
  });

  it('shrinks as evidence accumulates', () => {
    const few = margin(answers(30, 1.3, 0.2));
    const more = margin(answers(300, 1.3, 0.2));
    const many = margin(answers(3000, 1.3, 0.2));

    expect(more).toBeLessThan(few);
    expect(many).toBeLessThan(more);
    // The window's own spread is left: σ / √60 items at z = 3 (σ of a ±20% uniform draw ≈ 11.5%).
    expect(many).toBeGreaterThan(0.03);
    expect(many).toBeLessThan(0.06);
  });

  it('shrinks with the number of items a window holds: the sum averages them', () => {
    const pairs = answers(500, 1.3, 0.2);

    expect(margin(pairs, 400)).toBeLessThan(margin(pairs, 20));
  });

  it('never goes below the configured floor, however exact the evidence', () => {
    const exact = evidenceOf(answers(5000, 1.25, 0));

    expect(learnedRatio(exact, 1000)).toBeCloseTo(1.25 * (1 + DEFAULT_MARGIN.floor), 3);
    expect(learnedRatio(exact, 1000, { ...DEFAULT_MARGIN, floor: 0.03 })).toBeCloseTo(1.25 * 1.03, 3);
  });

  it('grows back when the answers show the estimate off', () => {
    const before = evidenceOf(answers(200, 1.0, 0.02));
    // The inputs change along the file: the next answers count 30% more.
    const after = addEvidence(before, evidenceOf(answers(100, 1.3, 0.02, 200)));

    const was = learnedRatio(before, 60)!;
    const now = learnedRatio(after, 60)!;

    expect(was).toBeLessThan(1.03);
    // Both the mean and the spread rose: the plan now covers the costlier items' share and more.
    expect(now).toBeGreaterThan(ratioStats(after)!.ratio * 1.05);
  });

  it('counts a window by its items, bigger items weighing more', () => {
    expect(windowItems([1000, 1000, 1000], 90_000, 1)).toBeCloseTo(90);
    // One big item among small ones: the window is as uncertain as fewer, larger items.
    expect(windowItems([100, 100, 100, 5000], 90_000, 1)).toBeLessThan(90_000 / ((300 + 5000) / 4));
    expect(windowItems([], 90_000, 1)).toBe(1);
  });
});

describe('token evidence: a page unlike what was answered', () => {
  const evidence = evidenceOf(answers(300, 1.0, 0.05));

  it('agrees with a sample drawn like the answers', () => {
    expect(sampleAgrees(evidence, answers(12, 1.0, 0.05, 1000))).toBe(true);
  });

  it.each([
    ['counts 30% more', 1.3],
    ['counts 30% less', 0.7],
  ])('disagrees with a page that %s', (_name, ratio) => {
    expect(sampleAgrees(evidence, answers(12, ratio, 0.05, 1000))).toBe(false);
  });

  it('disagrees with a page whose sample has a few items far above the rest', () => {
    const sample = [...answers(10, 1.0, 0.05, 1000), ...answers(2, 1.4, 0, 1000)];

    expect(sampleAgrees(evidence, sample)).toBe(false);
  });

  it('plans by the evidence when the page agrees, by the sample (as a fresh job) when it does not', () => {
    const estimates = Array.from({ length: 500 }, () => 1000);
    const like = pageRatio({ evidence, sample: answers(12, 1.0, 0.05, 1000), estimates, budget: 88_200 });
    const shifted = answers(12, 1.3, 0.05, 1000);
    const unlike = pageRatio({ evidence, sample: shifted, estimates, budget: 88_200 });
    const fresh = pageRatio({ evidence: NO_EVIDENCE, sample: shifted, estimates, budget: 88_200 });

    expect(like.source).toBe('evidence');
    expect(like.ratio!).toBeLessThan(1.0 * CALIBRATION_MARGIN);
    expect(unlike).toEqual(fresh);
    expect(unlike.source).toBe('sample');
    const highest = Math.max(...shifted.map((p) => p.counted / p.estimated));
    expect(unlike.ratio!).toBeCloseTo(highest * CALIBRATION_MARGIN, 2);
  });

  it('plans by the evidence when countTokens gave no sample', () => {
    const r = pageRatio({ evidence, sample: [], estimates: [1000], budget: 88_200 });

    expect(r.source).toBe('evidence');
    expect(r.ratio!).toBeGreaterThanOrEqual(1.0 * (1 + DEFAULT_MARGIN.floor));
  });
});
