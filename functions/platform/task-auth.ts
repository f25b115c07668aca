import { bearerToken } from './caller.js';
import { UnauthenticatedError } from './errors.js';
import { createIdTokenVerifier, type IdTokenVerifier } from './id-token.js';

/**
 * Checks that a request comes from one Google service with the expected service account: the
 * worker accepts only Cloud Tasks' OIDC token, tick only Cloud Scheduler's. Both services sign an
 * ID token for the account with the target's URL as audience; it is verified as ingest verifies
 * its callers' (./id-token.ts), and its email must be the account.
 */
export interface TaskAuthenticator {
  verify(authorization: string | undefined): Promise<void>;
}

export interface TaskAuthOptions {
  /** Who is expected, for messages: `Cloud Tasks`, `Cloud Scheduler`. */
  service: string;
  /** The function's URL: the audience the service puts in the token. */
  audience: string;
  serviceAccount?: string;
  /**
   * Accept the Cloud Tasks emulator's unsigned token (`alg: none`). Only when the emulator is
   * configured; never in the cloud.
   */
  acceptEmulatorTokens: boolean;
  /** Issuers accepted besides Google's, and where the keys are (the local cloud's issuer). */
  extraIssuers?: readonly string[];
  certsUrl?: string;
  /** See IdTokenVerifierOptions.acceptStrippedSignatures. */
  acceptStrippedSignatures?: boolean;
}

function decodeSegment(segment: string | undefined): Record<string, unknown> {
  if (!segment) throw new UnauthenticatedError('malformed bearer token');
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch (err) {
    throw new UnauthenticatedError('malformed bearer token', err);
  }
}

/** The email of the Cloud Tasks emulator's unsigned token (local runs only). */
function emulatorTokenEmail(token: string, options: TaskAuthOptions): unknown {
  if (!options.acceptEmulatorTokens) throw new UnauthenticatedError('unsigned token refused');
  const claims = decodeSegment(token.split('.')[1]);
  if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now())
    throw new UnauthenticatedError('token expired');
  if (claims.aud !== options.audience) throw new UnauthenticatedError('token is for another audience');
  return claims.email;
}

export function createTaskAuthenticator(
  options: TaskAuthOptions,
  verifier: IdTokenVerifier = createIdTokenVerifier({
    audiences: [options.audience].filter(Boolean),
    ...(options.extraIssuers ? { extraIssuers: options.extraIssuers } : {}),
    ...(options.certsUrl ? { certsUrl: options.certsUrl } : {}),
    ...(options.acceptStrippedSignatures ? { acceptStrippedSignatures: true } : {}),
  }),
): TaskAuthenticator {
  return {
    async verify(authorization) {
      const token = bearerToken(authorization);
      if (!token) throw new UnauthenticatedError(`missing bearer token: only ${options.service} may call`);
      const header = decodeSegment(token.split('.')[0]);
      const email =
        header.alg === 'none' ? emulatorTokenEmail(token, options) : (await verifier.verify(token)).email;
      if (options.serviceAccount && email !== options.serviceAccount.toLowerCase()) {
        throw new UnauthenticatedError(
          `token is for ${String(email)}, not the ${options.service} service account`,
        );
      }
    },
  };
}
