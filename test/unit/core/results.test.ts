import { describe, expect, it } from 'vitest';
import { CANCELLED_ERROR, errorLine, successLine } from '../../../functions/core/results.js';

describe('result lines', () => {
  it('has the Batch API shape with the input index for a success', () => {
    const response = { candidates: [{ content: { parts: [{ text: 'hi' }] } }] };

    expect(JSON.parse(JSON.stringify(successLine('k1', 3, response)))).toEqual({
      key: 'k1',
      index: 3,
      response,
    });
  });

  it("carries Gemini's own error triple for a failure", () => {
    const error = { code: 429, status: 'RESOURCE_EXHAUSTED', message: 'quota' };

    const line = errorLine('k2', 0, error);

    expect(line).toEqual({ key: 'k2', index: 0, error });
    expect('response' in line).toBe(false);
  });

  it('records a cancelled item with code 499 CANCELLED', () => {
    expect(CANCELLED_ERROR).toMatchObject({ code: 499, status: 'CANCELLED' });
  });
});
