import type { Readable } from 'node:stream';
import type { Storage } from '@google-cloud/storage';
import { abortable } from './abort.js';
import { MediaError } from './error.js';

/** A `gs://bucket/object` URI split in two. */
export interface GcsObject {
  bucket: string;
  name: string;
}

/**
 * Object names that could mean something else to a path, a URL or a log: `.` or `..` segments, empty
 * segments (`//`), a leading `/`, backslashes, percent-escapes (`%2e%2e`, `%2f`) and control
 * characters. Cloud Storage itself takes them literally, but the allow-list below is a prefix
 * check, which only holds for names that mean what they say.
 */
function trickIn(name: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'a control character';
  if (name.includes('\\')) return 'a backslash';
  if (/%[0-9a-f]{2}/i.test(name)) return 'a percent-escape';
  const segments = name.split('/');
  if (segments.some((s) => s === '')) return 'an empty path segment';
  if (segments.some((s) => s === '.' || s === '..')) return 'a "." or ".." segment';
  return undefined;
}

/** One answer for an object outside the job's locations and for one that is missing or unreadable. */
export const NOT_FOUND_OR_NOT_ALLOWED = (uri: string) => `${uri} was not found or is not allowed`;

/**
 * Checks a `gs://` URI before anything is read: a plain object name, under one of the `allowed`
 * prefixes (`gs://bucket/prefix/` entries: the job owner's media folders and the shared ones). The
 * service account can read every owner's media; only the job owner's own and the shared ones may be
 * sent to Gemini. The refusal names only the URI the caller sent, in the words a missing object gets.
 */
export function checkGcsUri(uri: string, allowed: readonly string[]): GcsObject {
  const m = /^gs:\/\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])\/([\s\S]+)$/.exec(uri);
  if (!m) throw new MediaError(`${uri} is not a gs://bucket/object URI`);
  const name = m[2]!;
  const trick = trickIn(name);
  if (trick) {
    throw new MediaError(
      `${uri} is refused: its object name has ${trick} (write the plain object name, as Cloud Storage lists it)`,
    );
  }
  if (!allowed.some((prefix) => prefix.endsWith('/') && uri.startsWith(prefix))) {
    // Word for word what a missing object answers (openGcsObject): a refusal must not tell another
    // owner's object from no object at all.
    throw new MediaError(NOT_FOUND_OR_NOT_ALLOWED(uri), true, {
      detail: "outside the job owner's media locations; not read",
    });
  }
  return { bucket: m[1]!, name };
}

/** An opened object: its stream (not yet flowing), stored size and stored content type. */
export interface OpenedObject {
  stream: Readable;
  size: number;
  contentType: string | undefined;
}

/**
 * Reads an allowed object's metadata and opens its bytes. A 401/403/404 is one answer to the caller,
 * "not found or not allowed" (which of them, and Cloud Storage's message, go to the log); other
 * failures are worth another attempt.
 */
export async function openGcsObject(
  storage: Storage,
  uri: string,
  allowed: readonly string[],
  signal?: AbortSignal,
): Promise<OpenedObject> {
  const { bucket, name } = checkGcsUri(uri, allowed);
  const file = storage.bucket(bucket).file(name);
  let metadata: { size?: string | number; contentType?: string };
  try {
    [metadata] = await abortable(file.getMetadata(), signal);
  } catch (err) {
    if (signal?.aborted && err === signal.reason) throw err;
    const code = (err as { code?: number }).code;
    const detail = `Cloud Storage: ${code ?? 'no status'} ${(err as Error).message}`;
    if (code === 401 || code === 403 || code === 404) {
      throw new MediaError(NOT_FOUND_OR_NOT_ALLOWED(uri), true, { detail, cause: err });
    }
    const permanent = !(code === undefined || code >= 500 || code === 429 || code === 408);
    throw new MediaError(
      permanent
        ? `${uri} could not be read`
        : `${uri} could not be read just now; the item will be tried again`,
      permanent,
      { detail, cause: err },
    );
  }
  return {
    stream: file.createReadStream(),
    size: Number(metadata.size ?? 0),
    contentType: metadata.contentType,
  };
}
