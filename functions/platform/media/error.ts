import { GeminiCallError } from '../gemini/client.js';

/**
 * A media problem, worded for the caller: its message lands in the item's result line, so it names
 * only what the caller sent (the URL or gs:// URI) and what was wrong in their terms ("not a public
 * address", "not found or not allowed"). What the worker learnt on the way (a resolved address,
 * Cloud Storage's or Gemini's own message) goes in `detail`, for the log only.
 */
export class MediaError extends Error {
  /** True when no retry can help (refused address, too big, wrong type, not found). */
  readonly permanent: boolean;
  /** Internal detail for the log; never shown to the caller. */
  readonly detail: string | undefined;

  constructor(message: string, permanent = true, options: { detail?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MediaError';
    this.permanent = permanent;
    this.detail = options.detail;
  }
}

/** `url` as it may appear in a log line: a signed URL's query (its signature) is left out. */
export function loggable(url: string): string {
  if (url.startsWith('gs://')) return url;
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

/** Any failure of a medium, as the caller may see it; the internals stay in `detail`. */
export function toMediaError(err: unknown, signal: AbortSignal, what: string): MediaError {
  if (signal.aborted && signal.reason instanceof MediaError) return signal.reason;
  if (err instanceof MediaError) return err;
  if (err instanceof GeminiCallError) {
    const status = err.httpStatus;
    const detail = `Files API: ${status ?? 'no status'} ${err.message} ${JSON.stringify(err.body ?? null).slice(0, 500)}`;
    if (status !== undefined && status < 500 && status !== 429 && status !== 408) {
      return new MediaError(`${what} was refused by the Gemini Files API`, true, { detail, cause: err });
    }
    return new MediaError(`${what} could not be uploaded to the Gemini Files API just now`, false, {
      detail,
      cause: err,
    });
  }
  return new MediaError(`${what} could not be read; the item will be tried again`, false, {
    detail: String((err as Error)?.message ?? err),
    cause: err,
  });
}
