import { UnauthenticatedError } from './errors.js';
import type { IdTokenVerifier } from './id-token.js';

/**
 * Who is calling ingest, from an ID token ingest verifies itself (./id-token.ts): never from a
 * token it only decoded. Cloud Run verifies `X-Serverless-Authorization` when a request carries it
 * and then passes `Authorization` on untouched and unverified
 * (https://cloud.google.com/run/docs/authenticating/service-to-service): so when that header is
 * present it alone is the identity, and `Authorization` is never looked at, not even as a fallback.
 * Locally the functions host plays that front (infra/local/functions-host.ts) and signs the local
 * developer's token onto requests that carry none.
 */
export interface Caller {
  /** The token's `email` (lowercased), or its `sub` for an identity without one. */
  id: string;
  /** Listed in `FANOUT_ADMINS`: may read every job, bucket jobs included. */
  admin: boolean;
}

/** The two headers an identity may come in. */
export interface CallerHeaders {
  authorization?: string | undefined;
  serverlessAuthorization?: string | undefined;
}

/** Resolves the verified caller of a request; throws {@link UnauthenticatedError} (401) otherwise. */
export type CallerResolver = (headers: CallerHeaders) => Promise<Caller>;

const HOW =
  "Send the caller's Google ID token as Authorization: Bearer … (gcloud auth print-identity-token).";

export function createCallerResolver(verifier: IdTokenVerifier, admins: readonly string[]): CallerResolver {
  return async ({ authorization, serverlessAuthorization }) => {
    const header = serverlessAuthorization !== undefined ? serverlessAuthorization : authorization;
    const token = bearerToken(header);
    if (!token) throw new UnauthenticatedError(`No ID token. ${HOW}`);
    const claims = await verifier.verify(token);
    const id = claims.email ?? claims.sub;
    return { id, admin: admins.includes(id) };
  };
}

/** The token of a `Bearer …` header value, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer +([A-Za-z0-9._~+/=-]+)$/i.exec(header?.trim() ?? '')?.[1];
}
