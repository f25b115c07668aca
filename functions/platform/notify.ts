import { lookup as dnsLookup } from 'node:dns';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type BlockList, isIP } from 'node:net';
import type { JobView } from '../api/jobs.js';
import { sleep } from '../api/sleep.js';
import { retry } from '../core/retry.js';
import { callbackDenied } from './callback-address.js';
import { guardedLookup, isPublicAddress } from './media/index.js';
import { callbackHeaders, callbackKeyFor } from './notify-signature.js';

type Lookup = typeof dnsLookup;

/**
 * Why a callback was not delivered. The lifecycle logs its message, so the message never names the
 * URL (its path or query may be a bearer token), the host, an address it resolved to, or the key.
 */
export class CallbackError extends Error {
  readonly retryable: boolean;
  /** The receiver's HTTP status, when it answered. */
  readonly statusCode?: number;
  constructor(message: string, options: { retryable: boolean; statusCode?: number }) {
    super(message);
    this.name = 'CallbackError';
    this.retryable = options.retryable;
    if (options.statusCode !== undefined) this.statusCode = options.statusCode;
  }
}

/** One event for a callback: its `webhook-id` (the same on every attempt) and what the body carries. */
export interface CallbackMessage {
  id: string;
  type: string;
  /** When the event happened (ISO 8601). */
  timestamp: string;
  data: unknown;
}

export interface CallbackOptions {
  /**
   * The receiver's key (`whsec_…`, the job owner's: see notify-signature.ts). Without one nothing is
   * sent: callbacks are never unsigned.
   */
  key: string | undefined;
  /** Attempts in all, the first included. */
  attempts?: number;
  /** How long one attempt may take, connect to response headers. */
  attemptTimeoutMs?: number;
  /** How long all attempts and the waits between them may take together. */
  totalTimeoutMs?: number;
  /** The wait before the second attempt; it doubles (with jitter) for each further one. */
  backoffMs?: number;
  /** The DNS resolver the address guard wraps; the system's by default. */
  resolve?: Lookup;
  /** Addresses never called; media's deny list by default. */
  denied?: BlockList;
  /** Certificate authorities to trust instead of Node's bundle (a test's self-signed receiver). */
  ca?: string | Buffer;
  /**
   * The local cloud (`config.local`): receivers on loopback, over http too, are accepted, as they run
   * on the developer's own machine. Private ranges and link-local stay refused. Never in the cloud.
   */
  local?: boolean;
}

const DEFAULTS = { attempts: 4, attemptTimeoutMs: 10_000, totalTimeoutMs: 30_000, backoffMs: 1_000 };

/**
 * POSTs `message` as JSON to a job's callback URL in the Standard Webhooks format
 * (functions/api/webhooks.ts): the body `{type, timestamp, destination: url, data}`, so the signature
 * covers where it was sent, and the `webhook-*` headers signed with `options.key`. Resolves on a 2xx; otherwise throws a
 * `CallbackError`.
 *
 * The URL is the caller's, so it is treated as hostile: https only, no credentials in it, and the
 * host must be a public address — a literal IP is checked here, a name by the lookup media uses
 * (`guardedLookup`), which checks the addresses actually connected to, so DNS rebinding does not get
 * past it. A redirect is a failure and is not followed (it could point anywhere, and Node's client
 * would not re-check it). The local cloud (`local`) also takes http and loopback, nothing else.
 *
 * 5xx, 429, timeouts and network errors are retried with exponential backoff, each attempt with its
 * own timeout and signature, all of them within `totalTimeoutMs`, because the lifecycle awaits the
 * callback inside a request (worker item, batch tick, cancel). Any other answer is final.
 */
export async function postCallback(
  url: string,
  message: CallbackMessage,
  options: CallbackOptions,
): Promise<void> {
  const { key } = options;
  if (!key) {
    throw new CallbackError('not sent: CALLBACK_SECRET is not set, and callbacks are never sent unsigned', {
      retryable: false,
    });
  }
  const attempts = options.attempts ?? DEFAULTS.attempts;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? DEFAULTS.attemptTimeoutMs;
  const backoffMs = options.backoffMs ?? DEFAULTS.backoffMs;
  const deadline = Date.now() + (options.totalTimeoutMs ?? DEFAULTS.totalTimeoutMs);
  const denied = callbackDenied(options.local === true, options.denied);
  const target = checkTarget(url, denied, options.local === true);
  const payload = { type: message.type, timestamp: message.timestamp, destination: url, data: message.data };
  const body = JSON.stringify(payload);

  let attempt = 0;
  try {
    return await retry(
      (n) => {
        attempt = n;
        // Each attempt carries its own timestamp, signed anew; the id stays the event's.
        const signed = callbackHeaders(key, message.id, body, Date.now() / 1000);
        const timeoutMs = Math.max(1, Math.min(attemptTimeoutMs, deadline - Date.now()));
        const resolve = options.resolve ?? dnsLookup;
        return postOnce(target, body, signed, timeoutMs, resolve, denied, options.ca);
      },
      {
        attempts,
        deadlineMs: deadline,
        backoff: { baseMs: backoffMs, jitter: 0.5 },
        retryable: (err) => (err as CallbackError).retryable === true,
        sleep,
        now: Date.now,
        random: Math.random,
      },
    );
  } catch (err) {
    const failure = err as CallbackError;
    throw new CallbackError(`${failure.message} (attempt ${attempt} of ${attempts})`, {
      retryable: failure.retryable,
      ...(failure.statusCode !== undefined ? { statusCode: failure.statusCode } : {}),
    });
  }
}

function checkTarget(raw: string, denied: BlockList, local: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CallbackError('the callback URL is not a URL', { retryable: false });
  }
  if (url.protocol !== 'https:' && !(local && url.protocol === 'http:'))
    throw new CallbackError('the callback URL is not https', { retryable: false });
  if (url.username || url.password) {
    throw new CallbackError('the callback URL holds credentials', { retryable: false });
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // Node connects to a literal IP without a lookup, so the guard below never sees it.
  if (isIP(host) && !isPublicAddress(host, denied)) {
    throw new CallbackError('the callback host is not a public address', { retryable: false });
  }
  return url;
}

/** What job callbacks are sent with: the deployment's master secret, and whether this is the local cloud. */
export interface NotifierOptions {
  /** `CALLBACK_SECRET`; each owner's key is derived from it (notify-signature.ts). */
  masterSecret: string | undefined;
  local: boolean;
}

/**
 * The lifecycle's `notify`: POSTs a job's end to `url` as the event `event.id`, signed with the
 * key of the job's owner (the deployment's key for a job without one).
 */
export function createCallbackNotifier(options: NotifierOptions) {
  return (url: string, job: JobView, event: { id: string; owner?: string }): Promise<void> =>
    postCallback(
      url,
      {
        id: event.id,
        type: `job.${job.status}`,
        timestamp: job.finishedAt ?? new Date().toISOString(),
        data: job,
      },
      {
        key: options.masterSecret && callbackKeyFor(options.masterSecret, event.owner),
        local: options.local,
      },
    );
}

/** One signed POST. Rejects with a CallbackError whose message holds no address (see CallbackError). */
function postOnce(
  url: URL,
  body: string,
  signed: Record<string, string>,
  timeoutMs: number,
  resolve: Lookup,
  denied: BlockList,
  ca: string | Buffer | undefined,
): Promise<void> {
  return new Promise((done, fail) => {
    // Tells a refusal by the guard apart from a resolver failure: both reach us as a socket error.
    let resolverFailed = false;
    let refused = false;
    const base = ((
      hostname: string,
      opts: object,
      callback: (err: Error | null, ...rest: unknown[]) => void,
    ) =>
      resolve(hostname, opts, (err: Error | null, ...rest: unknown[]) => {
        if (err) resolverFailed = true;
        callback(err, ...rest);
      })) as unknown as Lookup;
    const guarded = guardedLookup(base, denied);
    const lookup = ((
      hostname: string,
      opts: object,
      callback: (err: Error | null, ...rest: unknown[]) => void,
    ) =>
      guarded(hostname, opts, (err: Error | null, ...rest: unknown[]) => {
        if (err && !resolverFailed) refused = true;
        callback(err, ...rest);
      })) as unknown as Lookup;

    const req = (url.protocol === 'http:' ? httpRequest : httpsRequest)(
      url,
      {
        method: 'POST',
        // A fresh connection each time: a pooled socket would skip the lookup and its guard.
        agent: false,
        lookup,
        ...(ca ? { ca } : {}),
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'gemini-fanout',
          ...signed,
        },
      },
      (res) => {
        clearTimeout(timer);
        // Only the status matters; the receiver's body is never read.
        res.destroy();
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return done();
        const redirect = status >= 300 && status < 400 ? ' (redirects are not followed)' : '';
        fail(
          new CallbackError(`the callback answered ${status}${redirect}`, {
            retryable: status >= 500 || status === 429,
            statusCode: status,
          }),
        );
      },
    );
    const timer = setTimeout(
      () =>
        req.destroy(
          new CallbackError(`the callback did not answer within ${timeoutMs} ms`, { retryable: true }),
        ),
      timeoutMs,
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err instanceof CallbackError) return fail(err);
      if (refused) {
        return fail(
          new CallbackError('the callback host does not resolve to public addresses only', {
            retryable: false,
          }),
        );
      }
      // The code only: Node's messages name the address and port, or the certificate's names.
      const code =
        typeof err.code === 'string' && /^[A-Z0-9_]{1,64}$/.test(err.code) ? err.code : 'network error';
      const tls = /CERT|TLS|SSL/.test(code);
      fail(new CallbackError(`the callback could not be reached (${code})`, { retryable: !tls }));
    });
    req.end(body);
  });
}
