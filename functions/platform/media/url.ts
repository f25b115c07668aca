import type { lookup as dnsLookup } from 'node:dns';
import type { IncomingMessage } from 'node:http';
import { type Agent, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { guardedLookup, isPublicAddress } from './address.js';
import { MediaError } from './error.js';

const MAX_REDIRECTS = 3;
/** Longest wait for the next byte from a server (the whole fetch has its own deadline). */
const IDLE_MS = 30_000;

export interface UrlOpenOptions {
  /** DNS lookup of every connection; the guarded system resolver by default. */
  lookup?: typeof dnsLookup;
  /** The https agent (a test trusts its own certificate authority through it). */
  agent?: Agent;
  signal?: AbortSignal;
}

/** What a failed connection means to the caller, from Node's error code; a bad certificate stays bad. */
function connectionProblem(err: NodeJS.ErrnoException): { problem: string; permanent: boolean } {
  const code = err.code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT/.test(code))
    return { problem: 'its TLS certificate was not accepted', permanent: true };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return { problem: 'its host name did not resolve', permanent: false };
  if (code === 'ETIMEDOUT' || code === 'ECONNRESET')
    return { problem: 'the connection broke off', permanent: false };
  return { problem: 'the connection failed', permanent: false };
}

/**
 * Opens an https URL and answers the response of its last hop (up to MAX_REDIRECTS redirects),
 * headers read, body not yet. Every hop is checked the same way: https only, an IP literal must be
 * public (the URL parser has already turned `2130706433`, `0x7f.1` or `0177.0.0.1` into dotted
 * form), and a name is resolved by the guarded lookup as the socket connects. Errors name the URL
 * the caller sent, never the address a name resolved to or a redirect's target; those go in
 * `detail`.
 */
export async function openUrl(href: string, options: UrlOpenOptions = {}): Promise<IncomingMessage> {
  const lookup = options.lookup ?? guardedLookup();
  let url: URL;
  try {
    url = new URL(href);
  } catch {
    throw new MediaError(`${href} is not a URL`);
  }
  for (let hop = 0; ; hop++) {
    const via = hop === 0 ? '' : ' (through a redirect)';
    if (url.protocol !== 'https:') {
      throw new MediaError(
        `${href} is refused${via}: only https URLs are fetched, not ${url.protocol}`,
        true,
        {
          detail: `hop ${hop}: ${url.protocol}//${url.host}`,
        },
      );
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host) && !isPublicAddress(host)) {
      throw new MediaError(`${href} is refused${via}: not a public address`, true, {
        detail: `hop ${hop}: literal address ${host}`,
      });
    }
    const res = await get(url, href, via, lookup, options);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop >= MAX_REDIRECTS) throw new MediaError(`${href} redirects more than ${MAX_REDIRECTS} times`);
      try {
        url = new URL(res.headers.location, url);
      } catch {
        throw new MediaError(`${href} redirects to something that is not a URL`);
      }
      continue;
    }
    if (status !== 200) {
      res.resume();
      const retry = status >= 500 || status === 429 || status === 408;
      throw new MediaError(
        `${href} answered ${status}${retry ? '; the item will be tried again' : ''}`,
        !retry,
        { detail: `hop ${hop}: ${url.host} answered ${status}` },
      );
    }
    return res;
  }
}

function get(
  url: URL,
  href: string,
  via: string,
  lookup: typeof dnsLookup,
  options: UrlOpenOptions,
): Promise<IncomingMessage> {
  const { signal, agent } = options;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        lookup,
        timeout: IDLE_MS,
        headers: { 'user-agent': 'gemini-fanout' },
        ...(agent ? { agent } : {}),
        ...(signal ? { signal } : {}),
      },
      resolve,
    );
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer within ${IDLE_MS} ms`), { code: 'ETIMEDOUT' })),
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (signal?.aborted) return reject(signal.reason);
      if (err instanceof MediaError) {
        // The guarded lookup refused the address a name resolved to.
        return reject(
          new MediaError(`${href} is refused${via}: not a public address`, true, {
            detail: `hop to ${url.host}: ${err.detail ?? err.message}`,
          }),
        );
      }
      const { problem, permanent } = connectionProblem(err);
      reject(
        new MediaError(`could not fetch ${href}${via}: ${problem}`, permanent, {
          detail: `${url.host}: ${err.code ?? ''} ${err.message}`,
          cause: err,
        }),
      );
    });
    req.end();
  });
}
