import type { IncomingMessage } from 'node:http';
import { bearerToken } from '../../functions/platform/caller.js';
import type { IdTokenVerifier } from '../../functions/platform/id-token.js';

/**
 * Callers of the local cloud. Its identity provider is infra/local/id-issuer.ts (RS256 keys of
 * this run, served on loopback); ingest verifies its tokens with the code that verifies Google's.
 *
 * The functions host plays Cloud Run's front ({@link createLocalFront}): a request with a token is
 * admitted when the token verifies (`X-Serverless-Authorization` when present, else
 * `Authorization`, as Cloud Run; every verified identity is an invoker locally), and `Authorization`
 * is passed on untouched; a request with neither header is the local developer's (the front signs
 * their token into `Authorization`, so `curl` and a browser work as they are).
 */
export const LOCAL_DEVELOPER = 'developer@localhost';

/**
 * A signed ID token for `email` from the local cloud's issuer (`StackInfo.idIssuerUrl`), for the
 * audience `audience` (the ingest URL). `exp`/`iss` make tokens that must be refused (tests).
 */
export async function localIdToken(
  email: string,
  where: { issuerUrl: string; audience: string; exp?: number; iss?: string },
): Promise<string> {
  const query = new URLSearchParams({ email, audience: where.audience });
  if (where.exp !== undefined) query.set('exp', String(where.exp));
  if (where.iss !== undefined) query.set('iss', where.iss);
  const res = await fetch(`${where.issuerUrl}/token?${query}`, { headers: { 'metadata-flavor': 'Google' } });
  if (!res.ok)
    throw new Error(`the local issuer refused a token for ${email}: ${res.status} ${await res.text()}`);
  return res.text();
}

/** What the front decided: pass the request on, or answer it with `status` and `message`. */
export type FrontVerdict = { pass: true } | { pass: false; status: number; message: string };

/** Cloud Run's front for ingest, locally. */
export interface LocalFront {
  admit(req: IncomingMessage): Promise<FrontVerdict>;
}

/**
 * The front over `verifier` (ingest's own audiences and the local issuer). `developerToken` gives
 * the local developer's signed token (cached by the caller: it lasts an hour).
 */
export function createLocalFront(
  verifier: IdTokenVerifier,
  developerToken: () => Promise<string>,
): LocalFront {
  return {
    async admit(req) {
      const serverless = req.headers['x-serverless-authorization'];
      const authorization = req.headers.authorization;
      if (serverless === undefined && (authorization === undefined || authorization.trim() === '')) {
        req.headers.authorization = `Bearer ${await developerToken()}`;
        return { pass: true };
      }
      // Cloud Run verifies X-Serverless-Authorization when present and then passes Authorization on
      // untouched (https://cloud.google.com/run/docs/authenticating/service-to-service).
      const header = serverless !== undefined ? String(serverless) : authorization;
      const token = bearerToken(header);
      if (!token) return { pass: false, status: 401, message: 'The request has no valid ID token.' };
      try {
        await verifier.verify(token);
      } catch (err) {
        return { pass: false, status: 401, message: (err as Error).message };
      }
      return { pass: true };
    },
  };
}

/** The local developer's token, signed again a few minutes before the last one expires. */
export function cachedToken(mint: () => Promise<string>, lifetimeMs = 3600_000): () => Promise<string> {
  let current: { token: Promise<string>; until: number } | undefined;
  return () => {
    if (!current || Date.now() > current.until) {
      const token = mint();
      current = { token, until: Date.now() + lifetimeMs - 300_000 };
      token.catch(() => {
        current = undefined;
      });
    }
    return current.token;
  };
}
