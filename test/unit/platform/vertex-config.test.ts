import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, requireGeminiKey } from '../../../functions/platform/config.js';

// Vertex AI mode in the one config loader (platform/vertex-config.ts): the SDK's own variable names.

/** A deployed function's environment on Vertex AI: no key, ADC from the service account. */
const VERTEX = {
  GOOGLE_GENAI_USE_VERTEXAI: 'true',
  GOOGLE_CLOUD_PROJECT: 'my-project-42',
  GOOGLE_CLOUD_LOCATION: 'europe-west4',
  FANOUT_BUCKET: 'my-project-42-fanout',
  WORKER_URL: 'https://worker-abc-ew.a.run.app',
};

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig: Vertex AI', () => {
  it('targets the project and location, needs no key, and plans every model adaptively', () => {
    // Act
    const config = loadConfig(VERTEX);
    // Assert
    expect(config.gemini.vertex).toEqual({ project: 'my-project-42', location: 'europe-west4' });
    expect(requireGeminiKey(config)).toBe('');
    for (const quota of Object.values(config.quotas.models)) {
      expect(quota.adaptive).toEqual(config.quotas.adaptiveRate);
    }
  });

  it("defaults the location to global, as the SDK does, and reads TRUE and 1 as the SDK's true", () => {
    expect(loadConfig({ ...VERTEX, GOOGLE_CLOUD_LOCATION: undefined }).gemini.vertex?.location).toBe(
      'global',
    );
    expect(loadConfig({ ...VERTEX, GOOGLE_GENAI_USE_VERTEXAI: 'TRUE' }).gemini.vertex).toBeDefined();
    expect(loadConfig({ ...VERTEX, GOOGLE_GENAI_USE_VERTEXAI: '1' }).gemini.vertex).toBeDefined();
  });

  it('stays on the Developer API, fixed rates kept, when the variable is unset or false', () => {
    // Act
    const unset = loadConfig({ ...VERTEX, GOOGLE_GENAI_USE_VERTEXAI: undefined, GEMINI_API_KEY: 'AIza-k' });
    const off = loadConfig({ ...VERTEX, GOOGLE_GENAI_USE_VERTEXAI: 'false', GEMINI_API_KEY: 'AIza-k' });
    // Assert
    expect(unset.gemini.vertex).toBeUndefined();
    expect(off.gemini.vertex).toBeUndefined();
    expect(Object.values(off.quotas.models).some((q) => q.adaptive)).toBe(false);
  });

  it('names a bad value and how to fix it', () => {
    expect(problemsOf({ ...VERTEX, GOOGLE_GENAI_USE_VERTEXAI: 'yes' })).toEqual([
      expect.stringMatching(/^GOOGLE_GENAI_USE_VERTEXAI: expected true or false \(set it to true/),
    ]);
    expect(problemsOf({ ...VERTEX, GOOGLE_CLOUD_LOCATION: 'Europe West' })).toEqual([
      expect.stringMatching(/^GOOGLE_CLOUD_LOCATION: expected a location/),
    ]);
  });
});
