import { describe, expect, it } from 'vitest';
import { checkVertexTarget, vertexAdvice, vertexOf } from '../../../cli/doctor-vertex.js';

const V = { project: 'p1', location: 'us-central1' };
const httpError = (httpStatus: number | undefined) => Object.assign(new Error('boom'), { httpStatus });

describe('doctor on Vertex AI', () => {
  it('reads the Vertex target as the functions do: on with true or 1, location global by default', () => {
    expect(vertexOf({ GOOGLE_GENAI_USE_VERTEXAI: 'TRUE', GOOGLE_CLOUD_PROJECT: 'p1' })).toEqual({
      project: 'p1',
      location: 'global',
    });
    expect(vertexOf({ GOOGLE_GENAI_USE_VERTEXAI: '1', GOOGLE_CLOUD_LOCATION: 'europe-west4' })).toEqual({
      project: undefined,
      location: 'europe-west4',
    });
    expect(vertexOf({ GOOGLE_GENAI_USE_VERTEXAI: 'false', GOOGLE_CLOUD_PROJECT: 'p1' })).toBeUndefined();
    expect(vertexOf({})).toBeUndefined();
  });

  it('fails the target row without a project, saying which variable to set', () => {
    const row = checkVertexTarget({ location: 'global' });

    expect(row).toMatchObject({ status: 'fail', required: true });
    expect(row.fix).toMatch(/GOOGLE_CLOUD_PROJECT/);
    expect(checkVertexTarget(V)).toMatchObject({ status: 'ok', check: 'Gemini on Vertex AI' });
  });

  it.each([
    [undefined, /nothing answered/],
    [401, /application-default login/],
    [403, /roles\/aiplatform\.user .* aiplatform\.googleapis\.com in p1/],
    [404, /not served in location us-central1/],
    [429, /shared pool is busy/],
    [500, /answered 500/],
  ])('advises on a Vertex call that answered %s', (status, advice) => {
    expect(vertexAdvice(httpError(status), V, 'gemini-2.5-flash')).toMatch(advice);
  });
});
