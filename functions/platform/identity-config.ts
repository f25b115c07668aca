import { createHmac, randomBytes } from 'node:crypto';

/** How config.ts derives the identity settings it cannot take as they are from the environment. */

/** Each audience as given, and a URL also with (or without) its trailing slash. */
export function withAndWithoutSlash(audiences: string[]): string[] {
  const all = audiences.flatMap((a) =>
    /^https?:\/\//.test(a) ? [a.replace(/\/+$/, ''), `${a.replace(/\/+$/, '')}/`] : [a],
  );
  return [...new Set(all)];
}

/**
 * Page tokens' key: PAGE_TOKEN_SECRET, else one derived from the callback key (its own label, so
 * neither reveals the other), else a fixed key locally.
 */
export function pageTokenKey(
  own: string | undefined,
  callback: string | undefined,
  local: boolean,
): { pageTokenKey: string } {
  if (own) return { pageTokenKey: own };
  if (callback)
    return { pageTokenKey: createHmac('sha256', callback).update('gemini-fanout page tokens').digest('hex') };
  // Neither key bound in the cloud: a key of this instance, so a token is good only where it was made.
  return {
    pageTokenKey: local ? 'local-page-token-key-for-the-local-cloud-only' : randomBytes(32).toString('hex'),
  };
}
