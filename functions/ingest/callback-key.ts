import type { Request, Response } from '@google-cloud/functions-framework';
import type { CallbackKey } from '../api/webhooks.js';
import type { Caller } from '../platform/caller.js';
import { MethodNotAllowedError, NotFoundError } from '../platform/errors.js';
import { callbackKeyFor } from '../platform/notify-signature.js';

/**
 * `GET /callback-key`: the caller's own callback key, the one every callback of their jobs is
 * signed with (Standard Webhooks, see functions/api/webhooks.ts). Only ever the caller's: nothing in
 * the request names another owner (a query is ignored), admins included. Derived, not stored, so
 * the answer is the same on every call until the deployment's master secret is rotated.
 */
export function callbackKeyOf(caller: Caller, masterSecret: string | undefined): CallbackKey {
  if (!masterSecret) {
    throw new NotFoundError('This deployment sends no callbacks: CALLBACK_SECRET is not set.');
  }
  return { key: callbackKeyFor(masterSecret, caller.id), format: 'standard-webhooks' };
}

/** The route's adapter: GET only; the key is a secret, so no cache may keep it. */
export function sendCallbackKey(
  req: Request,
  res: Response,
  caller: Caller,
  masterSecret: string | undefined,
): void {
  if (req.method !== 'GET') throw new MethodNotAllowedError('Use GET /callback-key.');
  res.status(200).set('cache-control', 'no-store').json(callbackKeyOf(caller, masterSecret));
}
