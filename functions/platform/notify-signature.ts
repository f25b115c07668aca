import { hkdfSync } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { WEBHOOK_HEADERS } from '../api/webhooks.js';

/**
 * Callback keys and signatures, the sender's half of the Standard Webhooks format described in
 * functions/api/webhooks.ts (whose `verifyWebhook` is the one check, for receivers and for any
 * Standard Webhooks message this server receives).
 *
 * Each owner has a key of their own, derived from the deployment's master secret
 * (`CALLBACK_SECRET`): HKDF-SHA256 with the owner's id as `info`, 32 bytes, written `whsec_<base64>`.
 * So one owner's key verifies nothing sent to another, and no key is stored anywhere: rotating the
 * master secret rotates every owner's key. Jobs without an owner (none through the jobs API; the
 * bucket's jobs have no callbackUrl) are signed with the deployment's key (`info` = `deployment`),
 * which only the operator, who holds the master secret, can derive.
 */
export { verifyWebhook, WEBHOOK_HEADERS, WebhookVerificationError } from '../api/webhooks.js';

/** Fixed salt: keys are bound to this purpose and scheme version, not only to the secret. */
const KEY_SALT = 'gemini-fanout callback keys v1';

/** The callback key of `owner` (the job's owner id), or the deployment's key when there is none. */
export function callbackKeyFor(masterSecret: string, owner: string | undefined): string {
  const info = owner === undefined ? 'deployment' : `owner:${owner}`;
  const bytes = hkdfSync('sha256', masterSecret, KEY_SALT, info, 32);
  return `whsec_${Buffer.from(bytes).toString('base64')}`;
}

/** The three Standard Webhooks headers of one attempt to send `body`. */
export function callbackHeaders(
  key: string,
  id: string,
  body: string,
  timestampSeconds: number,
): Record<string, string> {
  const seconds = Math.floor(timestampSeconds);
  return {
    [WEBHOOK_HEADERS.id]: id,
    [WEBHOOK_HEADERS.timestamp]: String(seconds),
    [WEBHOOK_HEADERS.signature]: new Webhook(key).sign(id, new Date(seconds * 1000), body),
  };
}
