import { createHmac, timingSafeEqual } from 'node:crypto';
import { ValidationError } from '../platform/errors.js';

/**
 * Page tokens (`pageToken` of `GET /jobs` and `GET /jobs/{id}/results`) are sealed: the cursor, the
 * caller it was issued to and what it pages (the caller's list, every job, or one job's results),
 * under an HMAC. A token is honoured only for the same caller and the same listing, so a caller can
 * neither make one up (to probe whether a job id exists) nor replay another caller's. Tokens are not
 * secret (the cursor is readable) and do not expire: a cursor is only a position.
 */
export interface PageTokens {
  seal(cursor: string, binding: PageBinding): string;
  /** The cursor of a token sealed for this binding; 400 for any other. */
  open(token: string, binding: PageBinding): string;
}

/** Who a token was issued to and what it pages: `jobs`, `jobs:all` or `results:{jobId}`. */
export interface PageBinding {
  caller: string;
  scope: string;
}

const invalid = () =>
  new ValidationError('pageToken is not valid.', [{ field: 'pageToken', message: 'invalid' }]);

/** Page tokens under `key` (config's pageTokenKey: the same on every instance). */
export function createPageTokens(key: string): PageTokens {
  const mac = (cursor: string, b: PageBinding) =>
    createHmac('sha256', key)
      .update(JSON.stringify([b.caller, b.scope, cursor]))
      .digest()
      .subarray(0, 16);
  return {
    seal(cursor, binding) {
      return `${Buffer.from(cursor).toString('base64url')}.${mac(cursor, binding).toString('base64url')}`;
    },
    open(token, binding) {
      const m = /^([A-Za-z0-9_-]{1,200})\.([A-Za-z0-9_-]{22})$/.exec(token);
      if (!m) throw invalid();
      const cursor = Buffer.from(m[1] as string, 'base64url').toString();
      const given = Buffer.from(m[2] as string, 'base64url');
      const expected = mac(cursor, binding);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
      return cursor;
    },
  };
}
