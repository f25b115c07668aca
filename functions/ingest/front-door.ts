import type { Request } from '@google-cloud/functions-framework';
import { ForbiddenError, UnsupportedMediaTypeError } from '../platform/errors.js';

/**
 * What a request that changes something (`POST /jobs`, `POST /jobs/{id}/cancel`) must look like
 * before its caller is even looked at: a JSON body, and, when a browser says where it comes from, this
 * very origin. A browser cannot send `application/json` to another origin without a CORS preflight
 * (which ingest never grants), and it always sends `Origin` on a POST: together they keep a page on
 * another site (or one reached by DNS rebinding) from making a signed-in browser change a job.
 */
export function checkWrite(req: Request): void {
  const origin = req.header('origin');
  if (origin !== undefined && !sameOrigin(origin, req.header('host'))) {
    throw new ForbiddenError(
      `Requests from ${originName(origin)} may not change jobs; only this origin may.`,
    );
  }
  if (!isJson(req.header('content-type'))) {
    throw new UnsupportedMediaTypeError(
      `${req.method} ${req.path} takes a JSON body: send Content-Type: application/json.`,
    );
  }
}

/** `application/json`, with parameters or not, as a type (not a suffix such as `+json`). */
function isJson(contentType: string | undefined): boolean {
  return /^application\/json\s*(;|$)/i.test(contentType?.trim() ?? '');
}

/** The origin names the host this request was sent to (its `Host`), over http(s). */
function sameOrigin(origin: string, host: string | undefined): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // `null` (a sandboxed frame, a file) and anything else unparseable
  }
  const http = url.protocol === 'https:' || url.protocol === 'http:';
  return http && host !== undefined && url.host === host.toLowerCase() && url.origin === origin.toLowerCase();
}

/** The origin as a caller may see it quoted back: short, and only what it is. */
function originName(origin: string): string {
  return JSON.stringify(origin.slice(0, 100));
}
