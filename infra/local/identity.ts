import { createLocalOidcToken, decodeLocalOidcToken, LocalOidcTokenError } from './cloud-tasks/oidc.js';

/**
 * Callers of the local cloud. Deployed, ingest is private: Cloud Run admits a request only with a
 * valid Google ID token and passes its `Authorization` header on, and ingest reads the caller from
 * it (functions/platform/caller.ts). Locally the functions host plays that front: a request with no
 * `Authorization` is the local developer's (the header is set to their token, so `curl` and a
 * browser work as they are), a request with a local token ({@link localIdToken}) is that
 * identity's, and anything else is refused with 401 as Cloud Run would.
 */
export const LOCAL_DEVELOPER = 'developer@localhost';

/** An ID token for `email` that the local cloud accepts (unsigned, one hour, as Google's last). */
export function localIdToken(email: string, audience = 'gemini-fanout-local'): string {
  return createLocalOidcToken(email, audience, Date.now());
}

/**
 * The `Authorization` a request reaches ingest with: the developer's token when it had none, its own
 * when valid, or undefined when Cloud Run would have refused it.
 */
export function frontAuthorization(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.trim() === '')
    return `Bearer ${localIdToken(LOCAL_DEVELOPER)}`;
  try {
    decodeLocalOidcToken(authorization);
    return authorization;
  } catch (err) {
    if (err instanceof LocalOidcTokenError) return undefined;
    throw err;
  }
}
