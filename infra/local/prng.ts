/**
 * A small seeded PRNG (mulberry32) shared by the local emulators and tests: fault knobs, duplicate
 * deliveries, failing batch lines and shuffles replay identically for a given seed, so a
 * flaky-looking run can be reproduced.
 */
export type Prng = () => number;

/** A PRNG whose sequence of numbers in [0, 1) depends only on `seed`. */
export function createPrng(seed: number): Prng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates shuffle of `items` in place, driven by `prng`. */
export function shuffleInPlace<T>(items: T[], prng: Prng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(prng() * (i + 1));
    const a = items[i] as T;
    items[i] = items[j] as T;
    items[j] = a;
  }
  return items;
}
