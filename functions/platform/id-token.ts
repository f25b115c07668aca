import { OAuth2Client } from 'google-auth-library';
import { UnauthenticatedError } from './errors.js';

/**
 * Verifies Google-style ID tokens (OpenID Connect JWTs) with google-auth-library's OAuth2Client:
 * an RS256 signature by a key of `certsUrl` (Google's, or the local cloud's issuer), an allowed
 * issuer, an unexpired token of at most an hour's life (Google's ID tokens last one hour), an
 * audience in the allowed list, and `email_verified` when the token names an email. The library
 * fetches the certs and caches them for as long as their `Cache-Control: max-age` says.
 *
 * Only RS256 is accepted: Google signs ID tokens with RS256, so `alg: none`, HS256 (a public key
 * used as an HMAC secret) and anything else are refused before a key is looked at.
 *
 * One exception, off unless configured (`acceptStrippedSignatures`, FANOUT_ACCEPT_STRIPPED_TOKENS):
 * Google's front removes the signature of some tokens it verified before passing them on (the
 * signature then reads `SIGNATURE_REMOVED_BY_GOOGLE`, e.g. for tokens made by `gcloud`: Cloud Run's
 * troubleshooting page, and Cloud Functions' IAM page: "To prevent inappropriate re-use of these
 * tokens, … IAM removes the token signature"). Such a token can only have come through that front,
 * which verified it, and only in the header it verified (./caller.ts picks that one): its claims
 * (issuer, audience, expiry, email_verified) are still checked here. The local cloud never strips.
 */
export interface IdTokenVerifier {
  /** The token's claims once every check passed; throws {@link UnauthenticatedError} otherwise. */
  verify(token: string): Promise<IdClaims>;
}

/** What a verified ID token says about its bearer. */
export interface IdClaims {
  /** `email`, lowercased, when the token has one (then `email_verified` was true). */
  email?: string;
  sub: string;
  iss: string;
  aud: string;
}

/** Google's issuers, both spellings its ID tokens carry (OpenID Connect discovery document). */
export const GOOGLE_ISSUERS = ['accounts.google.com', 'https://accounts.google.com'] as const;

/** Google's signing certificates as a PEM map keyed by `kid` (what OAuth2Client reads in Node). */
export const GOOGLE_CERTS_URL = 'https://www.googleapis.com/oauth2/v1/certs';

/** Google's ID tokens live one hour; a few minutes' clock skew on top (as google-auth-library). */
const MAX_LIFETIME_SECONDS = 3600 + 300;
const CLOCK_SKEW_SECONDS = 300;

/** What Google's front leaves in place of a signature it removed. */
export const STRIPPED_SIGNATURE = 'SIGNATURE_REMOVED_BY_GOOGLE';

export interface IdTokenVerifierOptions {
  /** `aud` values accepted; never empty (the library would then skip the audience check). */
  audiences: readonly string[];
  /** Issuers accepted besides Google's (the local cloud's own). */
  extraIssuers?: readonly string[];
  /** Where the signing keys are (PEM map keyed by `kid`); Google's by default. */
  certsUrl?: string;
  /** Accept a token whose signature Google's front removed, on the front's word (see above). */
  acceptStrippedSignatures?: boolean;
}

export function createIdTokenVerifier(options: IdTokenVerifierOptions): IdTokenVerifier {
  const audiences = [...options.audiences];
  const issuers = [...GOOGLE_ISSUERS, ...(options.extraIssuers ?? [])];
  const client = new OAuth2Client({
    issuers,
    endpoints: { oauth2FederatedSignonPemCertsUrl: options.certsUrl ?? GOOGLE_CERTS_URL },
  });
  return {
    async verify(token) {
      if (audiences.length === 0)
        throw new Error('no audience is configured for ID tokens (FANOUT_AUDIENCES)');
      requireRs256(token);
      if (token.endsWith(`.${STRIPPED_SIGNATURE}`)) {
        if (!options.acceptStrippedSignatures)
          throw new UnauthenticatedError('The ID token is not valid: its signature was removed.');
        return claimsOf(checkedStrippedClaims(token, issuers, audiences));
      }
      let payload: Record<string, unknown> | undefined;
      try {
        const ticket = await client.verifyIdToken({
          idToken: token,
          audience: audiences,
          maxExpiry: MAX_LIFETIME_SECONDS,
        });
        payload = ticket.getPayload() as Record<string, unknown> | undefined;
      } catch (err) {
        throw new UnauthenticatedError(`The ID token is not valid: ${reasonOf(err)}.`, err);
      }
      return claimsOf(payload);
    },
  };
}

/** Refuses any token whose header is not `{"alg":"RS256","kid":…}`, before the library sees it. */
function requireRs256(token: string): void {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p)))
    throw new UnauthenticatedError('The ID token is not valid: it is not a signed JWT.');
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(parts[0] as string, 'base64url').toString('utf8'));
  } catch (err) {
    throw new UnauthenticatedError('The ID token is not valid: its header is not JSON.', err);
  }
  const { alg, kid } = (header ?? {}) as { alg?: unknown; kid?: unknown };
  if (alg !== 'RS256' || typeof kid !== 'string')
    throw new UnauthenticatedError('The ID token is not valid: only RS256-signed tokens are accepted.');
}

/**
 * The library's messages quote the whole token or its payload; a caller is told only which check
 * failed.
 */
function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (/No pem found/.test(message)) return 'it is not signed by a known key';
  if (/signature/i.test(message)) return 'its signature does not verify';
  if (/too late/.test(message)) return 'it has expired';
  if (/too early|too far in future/.test(message)) return 'its lifetime is not valid';
  if (/issuer/i.test(message)) return 'its issuer is not accepted';
  if (/audience|recipient/i.test(message)) return 'its audience is not accepted';
  if (/certificates/i.test(message)) return 'the signing keys could not be fetched';
  return 'it could not be verified';
}

/** The claims of a token Google's front verified and stripped, checked as the library would. */
function checkedStrippedClaims(
  token: string,
  issuers: string[],
  audiences: string[],
): Record<string, unknown> {
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8'));
  } catch (err) {
    throw new UnauthenticatedError('The ID token is not valid: its claims are not JSON.', err);
  }
  const now = Date.now() / 1000;
  const { iss, aud, iat, exp } = payload ?? {};
  const fail = (why: string) => new UnauthenticatedError(`The ID token is not valid: ${why}.`);
  if (typeof iat !== 'number' || typeof exp !== 'number') throw fail('it has no lifetime');
  if (now > exp + CLOCK_SKEW_SECONDS) throw fail('it has expired');
  if (now < iat - CLOCK_SKEW_SECONDS || exp >= now + MAX_LIFETIME_SECONDS)
    throw fail('its lifetime is not valid');
  if (typeof iss !== 'string' || !issuers.includes(iss)) throw fail('its issuer is not accepted');
  if (typeof aud !== 'string' || !audiences.includes(aud)) throw fail('its audience is not accepted');
  return payload;
}

function claimsOf(payload: Record<string, unknown> | undefined): IdClaims {
  const { email, email_verified, sub, iss, aud } = payload ?? {};
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 255)
    throw new UnauthenticatedError('The ID token is not valid: it has no subject.');
  if (email !== undefined) {
    if (typeof email !== 'string' || email.length === 0 || email.length > 320)
      throw new UnauthenticatedError('The ID token is not valid: its email is malformed.');
    if (email_verified !== true && email_verified !== 'true')
      throw new UnauthenticatedError('The ID token is not valid: its email is not verified.');
  }
  return {
    ...(typeof email === 'string' ? { email: email.toLowerCase() } : {}),
    sub,
    iss: String(iss),
    aud: String(aud),
  };
}
