import { OAuth2Client } from 'google-auth-library';
import { UnauthenticatedError } from './errors.js';

/** Checks that a request comes from Cloud Tasks with the expected service account. */
export interface TaskAuthenticator {
  verify(authorization: string | undefined): Promise<void>;
}

export interface TaskAuthOptions {
  /** The worker's URL: the audience Cloud Tasks puts in the token. */
  audience?: string;
  serviceAccount?: string;
  /**
   * Accept the Cloud Tasks emulator's unsigned token (`alg: none`). Only when the emulator is
   * configured; never in the cloud.
   */
  acceptEmulatorTokens: boolean;
}

function decodeSegment(segment: string | undefined): Record<string, unknown> {
  if (!segment) throw new UnauthenticatedError('malformed bearer token');
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch (err) {
    throw new UnauthenticatedError('malformed bearer token', err);
  }
}

export function createTaskAuthenticator(
  options: TaskAuthOptions,
  client = new OAuth2Client(),
): TaskAuthenticator {
  return {
    async verify(authorization) {
      const token = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
      if (!token) throw new UnauthenticatedError('missing bearer token: the worker accepts only Cloud Tasks');
      const [h, p] = token.split('.');
      const header = decodeSegment(h);
      let email: unknown;
      if (header.alg === 'none') {
        if (!options.acceptEmulatorTokens) throw new UnauthenticatedError('unsigned token refused');
        const claims = decodeSegment(p);
        if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now())
          throw new UnauthenticatedError('token expired');
        email = claims.email;
      } else {
        try {
          const ticket = await client.verifyIdToken({
            idToken: token,
            ...(options.audience ? { audience: options.audience } : {}),
          });
          const payload = ticket.getPayload();
          if (!payload?.email_verified) throw new UnauthenticatedError('token email is not verified');
          email = payload.email;
        } catch (err) {
          if (err instanceof UnauthenticatedError) throw err;
          throw new UnauthenticatedError('invalid token', err);
        }
      }
      if (options.serviceAccount && email !== options.serviceAccount) {
        throw new UnauthenticatedError(`token is for ${String(email)}, not the Cloud Tasks service account`);
      }
    },
  };
}
