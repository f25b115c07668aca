import { createHash } from 'node:crypto';

/** Issuer of Google-signed ID tokens; the local token claims the same so checks stay uniform. */
export const LOCAL_OIDC_ISSUER = 'https://accounts.google.com';

/** Lifetime of a minted token, as Google's ID tokens: one hour. */
const TOKEN_LIFETIME_SECONDS = 3600;

/** The claims of the unsigned token the emulator puts in `Authorization: Bearer …`. */
export interface LocalOidcClaims {
  iss: string;
  aud: string;
  azp: string;
  email: string;
  email_verified: boolean;
  sub: string;
  iat: number;
  exp: number;
}

/** Raised by {@link decodeLocalOidcToken} when the header is not a valid local token. */
export class LocalOidcTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalOidcTokenError';
  }
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A stable numeric subject per service account, like the account's unique id upstream. */
function subjectFor(email: string): string {
  const digest = createHash('sha256').update(email).digest();
  return `1${digest.readBigUInt64BE(0).toString().padStart(20, '0')}`;
}

/**
 * Mints the unsigned local token (`{"alg":"none","typ":"JWT"}`, empty signature) for an OIDC
 * task. `aud` is the configured audience, or the target URL when none is set, as upstream.
 */
export function createLocalOidcToken(serviceAccountEmail: string, audience: string, nowMs: number): string {
  const iat = Math.floor(nowMs / 1000);
  const claims: LocalOidcClaims = {
    iss: LOCAL_OIDC_ISSUER,
    aud: audience,
    azp: subjectFor(serviceAccountEmail),
    email: serviceAccountEmail,
    email_verified: true,
    sub: subjectFor(serviceAccountEmail),
    iat,
    exp: iat + TOKEN_LIFETIME_SECONDS,
  };
  return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
}

/** What {@link decodeLocalOidcToken} checks besides the token's shape. */
export interface LocalOidcCheck {
  /** Expected `aud`; not checked when omitted. */
  audience?: string;
  /** Expected `email`; not checked when omitted. */
  email?: string;
  /** Clock for `exp`/`iat`; defaults to now. */
  nowMs?: number;
}

function decodeSegment(segment: string | undefined, what: string): Record<string, unknown> {
  if (segment === undefined || segment === '') throw new LocalOidcTokenError(`token has no ${what}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new LocalOidcTokenError(`token ${what} is not base64url JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null)
    throw new LocalOidcTokenError(`token ${what} is not an object`);
  return parsed as Record<string, unknown>;
}

/**
 * Decodes and checks the unsigned token the Cloud Tasks emulator sends, from a whole
 * `Authorization` header value. For local runs only: a worker deployed upstream must verify
 * Google's signature instead. Throws {@link LocalOidcTokenError} on any mismatch.
 */
export function decodeLocalOidcToken(
  authorization: string | undefined,
  check: LocalOidcCheck = {},
): LocalOidcClaims {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization?.trim() ?? '');
  if (!match?.[1]) throw new LocalOidcTokenError('missing Bearer token');
  const parts = match[1].split('.');
  if (parts.length !== 3 || parts[2] !== '') throw new LocalOidcTokenError('not an unsigned local JWT');
  const header = decodeSegment(parts[0], 'header');
  if (header.alg !== 'none' || header.typ !== 'JWT') throw new LocalOidcTokenError('unexpected token header');
  const claims = decodeSegment(parts[1], 'claims');
  const { iss, aud, azp, email, email_verified, sub, iat, exp } = claims;
  if (
    typeof iss !== 'string' ||
    typeof aud !== 'string' ||
    typeof email !== 'string' ||
    typeof sub !== 'string' ||
    typeof iat !== 'number' ||
    typeof exp !== 'number'
  ) {
    throw new LocalOidcTokenError('token claims are incomplete');
  }
  if (iss !== LOCAL_OIDC_ISSUER) throw new LocalOidcTokenError(`unexpected issuer ${iss}`);
  if (email_verified !== true) throw new LocalOidcTokenError('email is not verified');
  const nowSeconds = Math.floor((check.nowMs ?? Date.now()) / 1000);
  if (exp <= nowSeconds) throw new LocalOidcTokenError('token expired');
  if (check.audience !== undefined && aud !== check.audience) {
    throw new LocalOidcTokenError(`audience ${aud} is not ${check.audience}`);
  }
  if (check.email !== undefined && email !== check.email) {
    throw new LocalOidcTokenError(`token is for ${email}, not ${check.email}`);
  }
  return { iss, aud, azp: typeof azp === 'string' ? azp : sub, email, email_verified, sub, iat, exp };
}
