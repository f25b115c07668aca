import { describe, expect, it } from 'vitest';
import { isPreconditionFailure } from '../../../functions/platform/store/firestore.js';

describe('Firestore error codes', () => {
  it('reads only FAILED_PRECONDITION and NOT_FOUND as "someone else won"', () => {
    expect(isPreconditionFailure({ code: 9 })).toBe(true);
    expect(isPreconditionFailure({ code: 5 })).toBe(true);
    // ABORTED is contention: the write may still be ours to make; UNAVAILABLE and the rest are faults.
    expect(isPreconditionFailure({ code: 10 })).toBe(false);
    expect(isPreconditionFailure({ code: 14 })).toBe(false);
    expect(isPreconditionFailure(new Error('no code'))).toBe(false);
  });
});
