import { randomInt } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A lowercase alphanumeric id like the real service's resource ids (`files/abc123…`). Ids are not
 * drawn from the seeded PRNG: `reset()` reseeds it, and stored files and batches must never collide.
 * Lowercase alphanumerics matter: the SDK extracts file ids from URIs with `/[a-z0-9]+/`.
 */
export function newResourceId(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}
