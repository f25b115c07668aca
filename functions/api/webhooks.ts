/**
 * Job callbacks as a receiver sees them: the Standard Webhooks format (https://www.standardwebhooks.com/,
 * spec 1.0.0; the format Gemini's own batch webhooks use) and the one check a receiver needs,
 * {@link verifyCallback}.
 *
 * Every callback is a POST of JSON with three headers:
 *   webhook-id:        `job_<job id>`: one per event, the same on every attempt (dedupe on it)
 *   webhook-timestamp: unix seconds of this attempt (each attempt is signed anew)
 *   webhook-signature: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>">`, space-separated
 *                      when there are several (key rotation)
 * keyed with the owner's callback key (`whsec_<base64>`, `GET /callback-key`). The body is
 * {@link CallbackPayload}: its `destination` is the URL the job named, so the signature covers where
 * the callback was sent and a payload replayed to another endpoint fails verification there.
 *
 * Signatures are computed with the `standardwebhooks` reference library; nothing Node-only here.
 */
import { Webhook } from 'standardwebhooks';
import { z } from 'zod';
import { type Declared, jobViewSchema } from './jobs.js';

/** The Standard Webhooks headers, lower-case. */
export const WEBHOOK_HEADERS = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const;

/** How far a callback's timestamp may be from the receiver's clock by default: 5 minutes, as the spec's libraries. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** The `webhook-id` of a job's end: stable across attempts, so receivers dedupe on it. */
export function callbackIdFor(jobId: string): string {
  return `job_${jobId}`;
}

/** A callback's body, the spec's `{type, timestamp, data}` with the signed destination. */
export const callbackPayloadSchema = z.looseObject({
  /** `job.succeeded`, `job.failed` or `job.cancelled`. */
  type: z.string().regex(/^job\.[a-z]+$/),
  /** When the job ended. */
  timestamp: z.iso.datetime(),
  /** The job's `callbackUrl`: where the sender meant this callback to go. */
  destination: z.string(),
  /** The job as it ended (`GET /jobs/{id}` without its own `callback` field). */
  data: jobViewSchema,
});
export type CallbackPayload = Declared<z.infer<typeof callbackPayloadSchema>>;

/** `GET /callback-key`: the caller's own key. */
export const callbackKeySchema = z.looseObject({
  key: z.string().regex(/^whsec_[A-Za-z0-9+/]+=*$/),
  format: z.literal('standard-webhooks'),
});
export type CallbackKey = Declared<z.infer<typeof callbackKeySchema>>;

/** Why a webhook was refused. The message never holds the key or the body. */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

/** Headers as fetch (`Headers`) or Node (`IncomingHttpHeaders`) give them, or a plain record. */
export type HeadersLike = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeadersLike, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value.join(' ') : value;
}

/** Compares two strings in time that depends on their length only (signatures have a fixed length). */
function sameString(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export interface WebhookVerifyOptions {
  /** How far `webhook-timestamp` may be from now, either way (default 300 s). */
  toleranceSeconds?: number;
  /** The receiver's clock, unix seconds (default: now). */
  nowSeconds?: number;
}

/**
 * Checks a Standard Webhooks message: the three headers, a timestamp within the tolerance and a
 * `v1` signature by `key` (`whsec_…`) over `<id>.<timestamp>.<rawBody>`. `rawBody` is the body
 * exactly as received: parse it only after this. Returns the `webhook-id` (to dedupe on); throws
 * {@link WebhookVerificationError} otherwise. Reusable for any Standard Webhooks sender.
 */
export function verifyWebhook(
  headers: HeadersLike,
  rawBody: string | Uint8Array,
  key: string,
  options: WebhookVerifyOptions = {},
): { id: string; timestampSeconds: number } {
  const id = header(headers, WEBHOOK_HEADERS.id);
  const timestamp = header(headers, WEBHOOK_HEADERS.timestamp);
  const signatures = header(headers, WEBHOOK_HEADERS.signature);
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError('missing webhook-id, webhook-timestamp or webhook-signature');
  }
  if (!/^\d{1,12}$/.test(timestamp)) throw new WebhookVerificationError('malformed webhook-timestamp');
  const seconds = Number(timestamp);
  const now = options.nowSeconds ?? Date.now() / 1000;
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (!(Math.abs(now - seconds) <= tolerance)) {
    throw new WebhookVerificationError(`webhook-timestamp is more than ${tolerance} s from now`);
  }
  let expected: string;
  try {
    expected = new Webhook(key).sign(id, new Date(seconds * 1000), rawBody);
  } catch {
    throw new WebhookVerificationError('the key is not a Standard Webhooks key (whsec_<base64>)');
  }
  if (!signatures.split(' ').some((s) => sameString(s, expected))) {
    throw new WebhookVerificationError('no signature matches');
  }
  return { id, timestampSeconds: seconds };
}

/** The URL as a receiver and the sender both spell it (WHATWG-normalised), or undefined. */
function normalUrl(url: string): string | undefined {
  try {
    return new URL(url).href;
  } catch {
    return undefined;
  }
}

/**
 * Verifies a job callback and returns its payload: {@link verifyWebhook} with `key` (yours, from
 * `GET /callback-key` or `gemini-fanout callback-key`), then the body's `destination` must be
 * `url`, the URL you gave as `callbackUrl`, so a callback captured at one endpoint and replayed to
 * another is refused. Dedupe on `webhook-id` (the same on every attempt). Throws
 * {@link WebhookVerificationError} for anything else.
 */
export function verifyCallback(
  headers: HeadersLike,
  rawBody: string | Uint8Array,
  key: string,
  options: WebhookVerifyOptions & { url: string },
): CallbackPayload & { webhookId: string } {
  const { id } = verifyWebhook(headers, rawBody, key, options);
  let json: unknown;
  try {
    json = JSON.parse(typeof rawBody === 'string' ? rawBody : new TextDecoder().decode(rawBody));
  } catch {
    throw new WebhookVerificationError('the body is not JSON');
  }
  const parsed = callbackPayloadSchema.safeParse(json);
  if (!parsed.success) throw new WebhookVerificationError('the body is not a job callback');
  const expected = normalUrl(options.url);
  if (!expected || normalUrl(parsed.data.destination) !== expected) {
    throw new WebhookVerificationError('the callback was sent to another destination');
  }
  return { ...(parsed.data as CallbackPayload), webhookId: id };
}
