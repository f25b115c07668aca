import { createPrng, type Prng } from '../../infra/local/prng.js';

/**
 * The one source of chance in a simulated run, seeded (the local cloud's mulberry32): every choice
 * of the world, the queue, Gemini and the faults is drawn from it in a fixed order, so a seed
 * replays exactly.
 */
export class Rng {
  private readonly next: Prng;

  constructor(seed: number) {
    this.next = createPrng(seed);
  }

  /** A number in [0, 1). */
  float(): number {
    return this.next();
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(values: readonly T[]): T {
    return values[Math.floor(this.next() * values.length)]!;
  }
}
