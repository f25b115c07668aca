import { describe, expect, it } from 'vitest';
import { developerLine, KEY_LABEL, vertexLine } from '../../../../functions/platform/gemini/vertex-batch.js';

// The line shapes of the batch cycle on Vertex (platform/gemini/vertex-batch.ts): the key travels in
// the request's labels, which Vertex echoes in its output; results come back in the Developer API's shape.

describe('Vertex batch lines', () => {
  it('moves the key into the request labels, keeping the labels the request had', () => {
    const line = vertexLine(
      JSON.stringify({ key: '000000007', request: { contents: [], labels: { team: 'a' } } }),
    );
    expect(line).toEqual({ request: { contents: [], labels: { team: 'a', [KEY_LABEL]: '000000007' } } });
    expect(Object.keys(line)).toEqual(['request']);
  });

  it("reads an output line's key from the echoed request: a response, or an error for a non-empty status", () => {
    const ok = developerLine(
      JSON.stringify({ status: '', request: { labels: { [KEY_LABEL]: '3' } }, response: { candidates: [] } }),
    );
    const bad = developerLine(
      JSON.stringify({ status: 'Bad Request: no contents', request: { labels: { [KEY_LABEL]: '4' } } }),
    );
    const busy = developerLine(
      JSON.stringify({
        status: 'Resource exhausted. Please try again later.',
        request: { labels: { [KEY_LABEL]: '5' } },
      }),
    );
    expect(ok).toEqual({ key: '3', response: { candidates: [] } });
    expect(busy).toMatchObject({ key: '5', error: { code: 429, status: 'RESOURCE_EXHAUSTED' } });
    expect(bad).toEqual({
      key: '4',
      error: { code: 400, status: 'INVALID_ARGUMENT', message: 'Bad Request: no contents' },
    });
  });
});
