import { describe, expect, it } from 'vitest';
import { tokenRuleSchema } from '../../../infra/local/gemini/config.js';
import { countRequestTokens } from '../../../infra/local/gemini/tokens.js';

// The stand-in's token count can differ from the product's estimate by a factor (`tokens.skew`) and
// scatter around it per request (`tokens.skewNoise`): the token plan is tested against both.

const request = (text: string) => ({ contents: [{ role: 'user', parts: [{ text }] }] });
const prompts = Array.from({ length: 400 }, (_, i) => `prompt ${i} ${'x'.repeat(3990)}`);
const ratios = (rule: ReturnType<typeof tokenRuleSchema.parse>) =>
  prompts.map((p) => countRequestTokens(request(p), rule).total / Math.ceil(Buffer.byteLength(p) / 4));

describe('stand-in token count: skew and per-request noise', () => {
  it('scatters each request within skew × (1 ± noise), the same request always alike', () => {
    const rule = tokenRuleSchema.parse({ skew: 1.3, skewNoise: 0.1 });

    const r = ratios(rule);

    expect(Math.min(...r)).toBeGreaterThanOrEqual(1.3 * 0.9 - 0.001);
    expect(Math.max(...r)).toBeLessThanOrEqual(1.3 * 1.1 + 0.001);
    // Spread over the band, centred on the skew.
    expect(Math.max(...r) - Math.min(...r)).toBeGreaterThan(0.2);
    expect(r.reduce((a, b) => a + b, 0) / r.length).toBeCloseTo(1.3, 1);
    expect(countRequestTokens(request(prompts[7]!), rule)).toEqual(
      countRequestTokens(request(prompts[7]!), rule),
    );
  });

  it('is the skew alone without noise', () => {
    const r = ratios(tokenRuleSchema.parse({ skew: 0.7 }));

    expect(new Set(r.map((x) => x.toFixed(3)))).toEqual(new Set(['0.700']));
  });
});
