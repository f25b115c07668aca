import { describe, expect, it } from 'vitest';
import { StandInHttpError } from '../../../infra/local/gemini/errors.js';
import { type VertexConfig, VertexGate, vertexSchema } from '../../../infra/local/gemini/vertex.js';

// The stand-in's shared-pool hypothesis (gemini/vertex.ts): capacity rpm × (1 + swing × sin(2πt/T)),
// counted over a short window.

function gate(pool: Partial<VertexConfig['pool']>, clock: { ms: number }) {
  const config = vertexSchema.parse({ subjectToken: 'x'.repeat(16), pool });
  return new VertexGate(
    () => clock.ms,
    () => config,
  );
}

const admitted = (g: VertexGate, n: number) => {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    try {
      g.admit('m');
      ok++;
    } catch (e) {
      if (!(e instanceof StandInHttpError) || e.httpStatus !== 429) throw e;
    }
  }
  return ok;
};

describe("the stand-in's Vertex shared pool", () => {
  it('swings its capacity with time: up by the swing a quarter period in, down by it three quarters in', () => {
    const clock = { ms: 0 };
    const g = gate({ rpm: 600, swing: 0.5, periodMs: 400_000 }, clock);
    expect(g.capacityRpm(100_000)).toBeCloseTo(900);
    expect(g.capacityRpm(300_000)).toBeCloseTo(300);
    expect(gate({}, clock).capacityRpm(0)).toBeUndefined();
  });

  it('admits capacity × window / 60 s per window, and again once the window moves on', () => {
    // Arrange: 600 a minute over 10 s windows: 100 a window.
    const clock = { ms: 1_000_000 };
    const g = gate({ rpm: 600, windowMs: 10_000 }, clock);
    // Act
    const first = admitted(g, 150);
    clock.ms += 10_001;
    const second = admitted(g, 150);
    // Assert
    expect(first).toBe(100);
    expect(second).toBe(100);
  });

  it('admits less where the swing has lowered the capacity', () => {
    const clock = { ms: 300_000 };
    const g = gate({ rpm: 600, swing: 0.5, periodMs: 400_000, windowMs: 10_000 }, clock);
    expect(admitted(g, 150)).toBe(50);
  });
});
