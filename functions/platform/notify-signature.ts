import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The signature of a callback, in the header `X-Fanout-Signature` (the Stripe / Standard Webhooks
 * scheme):
 *
 *   X-Fanout-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
 *
 * keyed with the UTF-8 bytes of CALLBACK_SECRET, over the raw request body exactly as received (do
 * not parse and re-serialise the JSON first). A receiver recomputes the HMAC, compares it in constant
 * time with each `v1` entry (there may be several while a key is rotated), and refuses a `t` further
 * than its tolerance (a few minutes) from its own clock, so a captured request cannot be replayed
 * later. Every attempt is signed anew, with its own `t`.
 */
export const SIGNATURE_HEADER = 'X-Fanout-Signature';

function hmacHex(secret: string, timestamp: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The `X-Fanout-Signature` value of `body` sent at `timestampSeconds` (see SIGNATURE_HEADER). */
export function signCallback(secret: string, body: string | Buffer, timestampSeconds: number): string {
  const t = Math.floor(timestampSeconds);
  return `t=${t},v1=${hmacHex(secret, t, body)}`;
}

/**
 * True when `header` (the `X-Fanout-Signature` value) signs `body` (the raw bytes received) with
 * `secret`, at a time within `toleranceSeconds` of `nowSeconds`. False for a missing or malformed
 * header, a stale or future timestamp, another key or another body; it never throws.
 */
export function verifyCallbackSignature(
  secret: string,
  header: string | null | undefined,
  body: string | Buffer,
  toleranceSeconds: number,
  nowSeconds: number = Date.now() / 1000,
): boolean {
  if (!header) return false;
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return false;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !/^\d{1,12}$/.test(value)) return false;
      timestamp = Number(value);
    } else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) {
      signatures.push(Buffer.from(value, 'hex'));
    }
  }
  if (timestamp === undefined || signatures.length === 0) return false;
  if (!(Math.abs(nowSeconds - timestamp) <= toleranceSeconds)) return false;
  const expected = Buffer.from(hmacHex(secret, timestamp, body), 'hex');
  return signatures.some((s) => timingSafeEqual(s, expected));
}
