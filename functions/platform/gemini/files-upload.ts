import { sleep } from '../../api/sleep.js';
import { retry } from '../../core/retry.js';
import { GEMINI_API_VERSION, GeminiCallError } from './client.js';
import { type RestTransport, restCall } from './rest.js';
import { fileOf, type UploadedFile } from './upload-answer.js';

export { UploadAnswerError, type UploadedFile } from './upload-answer.js';

/** Tries of one chunk, the first included, before the upload is cancelled. */
const CHUNK_TRIES = 5;
/** Wait before asking where the upload stands, doubled after each failure. */
const RETRY_BASE_MS = 250;
/** Used when the start answer announces no granularity (the Files API announces 8 MiB). */
const DEFAULT_GRANULARITY = 8 * 1024 * 1024;
/** One chunk is held in memory: a larger announced granularity would break that bound. */
const MAX_GRANULARITY = 64 * 1024 * 1024;
/** UTF-16 code units of a string piece encoded at a time, bounding the temporary copy. */
const STRING_SLICE = 16 * 1024;

/** Worth asking where the upload stands and sending again: no answer, a timeout, 408, 429, 5xx. */
function isTransient(error: unknown): boolean {
  if (!(error instanceof GeminiCallError)) return false;
  const status = error.httpStatus;
  return status === undefined || status === 408 || status === 429 || status >= 500;
}

/**
 * The upload session is in a state resending this chunk cannot mend. No status of its own, as
 * before: the caller may still start the whole upload again later, so it stays a transient fault
 * there; only this session's retries end.
 */
class UploadStuckError extends GeminiCallError {
  constructor(message: string, cause: unknown) {
    super(message, undefined, undefined, { cause });
  }
}

/** Bytes of a source piece; a string is encoded a slice at a time, never split inside a character. */
function* bytesOf(piece: Uint8Array | string): Generator<Uint8Array> {
  if (typeof piece !== 'string') {
    yield piece;
    return;
  }
  for (let from = 0; from < piece.length; ) {
    let to = Math.min(piece.length, from + STRING_SLICE);
    const last = piece.charCodeAt(to - 1);
    if (to < piece.length && last >= 0xd800 && last <= 0xdbff) to--;
    yield Buffer.from(piece.slice(from, to), 'utf8');
    from = to;
  }
}

/**
 * The headers of an upload start as the SDK sends them (js-genai `ApiClient.fetchUploadUrl`:
 * `X-Goog-Upload-Header-Content-Length` and `-Content-Type`; the Files API guide's REST example
 * sends the same). A size is declared whenever it is known; the Files API documents no form for an
 * unknown one, so a source of truly unknown length (a medium served without a length) sends none.
 */
function startHeaders(mimeType: string, sizeBytes: number | undefined): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-goog-upload-protocol': 'resumable',
    'x-goog-upload-command': 'start',
    ...(sizeBytes !== undefined ? { 'x-goog-upload-header-content-length': String(sizeBytes) } : {}),
    'x-goog-upload-header-content-type': mimeType,
  };
}

/**
 * Streams `source` into a Files API resumable upload (start → `upload` chunks → `upload, finalize`).
 * `sizeBytes`, when given, is declared at start and the source must hold exactly that many bytes
 * (a source that differs is refused before the upload is finalized). Memory holds one chunk, whatever the
 * source's size: bytes are copied into one preallocated buffer of the announced granularity, and a
 * full buffer is sent only once a further byte shows it is not the last one. A chunk that fails
 * (no answer, 408, 429, 5xx) stays buffered; the server is asked where it stands (`query`) and the
 * upload resumes from there, up to `CHUNK_TRIES` times; then, as on any other failure, including
 * the source's own, the upload is cancelled and the error thrown.
 */
export async function uploadResumable(
  t: RestTransport,
  source: AsyncIterable<Uint8Array | string>,
  options: { displayName: string; mimeType: string; sizeBytes?: number; signal?: AbortSignal },
): Promise<UploadedFile> {
  const { signal, sizeBytes } = options;
  if (sizeBytes !== undefined && !(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0)) {
    throw new TypeError(`Not a size: ${sizeBytes}`);
  }
  const start = await restCall(t, `${t.baseUrl}/upload/${GEMINI_API_VERSION}/files`, {
    method: 'POST',
    headers: startHeaders(options.mimeType, sizeBytes),
    body: JSON.stringify({ file: { displayName: options.displayName } }),
    ...(signal ? { signal } : {}),
  });
  await start.body?.cancel();
  const url = start.headers.get('x-goog-upload-url');
  if (!url) throw new GeminiCallError('The upload start answer has no X-Goog-Upload-URL', 200, undefined);
  const upload = new ResumableUpload(t, url, signal);
  try {
    const announced = start.headers.get('x-goog-upload-chunk-granularity');
    const granularity = announced === null ? DEFAULT_GRANULARITY : Number(announced);
    if (!Number.isInteger(granularity) || granularity <= 0 || granularity > MAX_GRANULARITY) {
      throw new GeminiCallError(`Unusable upload chunk granularity: ${announced}`, 200, undefined);
    }
    const chunk = Buffer.allocUnsafe(granularity);
    let fill = 0;
    let offset = 0;
    for await (const piece of source) {
      for (const bytes of bytesOf(piece)) {
        for (let at = 0; at < bytes.length; ) {
          if (fill === chunk.length) {
            if (sizeBytes !== undefined && offset + fill >= sizeBytes) throw sizeMismatch(sizeBytes, 'more');
            await upload.send(chunk, offset, fill, false);
            offset += fill;
            fill = 0;
          }
          const n = Math.min(chunk.length - fill, bytes.length - at);
          chunk.set(bytes.subarray(at, at + n), fill);
          fill += n;
          at += n;
        }
      }
    }
    if (sizeBytes !== undefined && offset + fill !== sizeBytes)
      throw sizeMismatch(sizeBytes, String(offset + fill));
    const file = (await upload.send(chunk, offset, fill, true)) as UploadedFile;
    if (file.sizeBytes !== offset + fill) {
      throw new GeminiCallError(
        `Uploaded ${offset + fill} bytes but ${file.name} holds ${file.sizeBytes}`,
        200,
        undefined,
      );
    }
    return file;
  } catch (error) {
    await upload.cancel();
    throw error;
  }
}

/** The source does not hold the size declared at start: finalizing would be refused, or worse, not. */
function sizeMismatch(declared: number, held: string): TypeError {
  return new TypeError(`The upload declared ${declared} bytes but its source holds ${held}`);
}

/** One upload session: its URL, the chunk protocol, and resuming after a failed chunk. */
class ResumableUpload {
  private finished = false;

  constructor(
    private readonly t: RestTransport,
    private readonly url: string,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /**
   * Sends bytes [0, length) of `chunk`, which sit at `offset` in the file, until the server holds
   * them all; the final chunk also finalizes and answers the file.
   */
  async send(
    chunk: Buffer,
    offset: number,
    length: number,
    final: boolean,
  ): Promise<UploadedFile | undefined> {
    let failure: unknown;
    return retry(
      async (attempt) => {
        let from = offset;
        if (attempt > 1) {
          const resumed = await this.resumeAt(offset, length, final, failure);
          if (typeof resumed !== 'number') return resumed.answer;
          from = resumed;
        }
        return await this.put(chunk, offset, length, from, final);
      },
      {
        attempts: CHUNK_TRIES,
        backoff: { baseMs: RETRY_BASE_MS },
        retryable: (error) => isTransient(error) && !(error instanceof UploadStuckError),
        sleep: (ms) => sleep(ms, this.signal),
        onRetry: (error) => {
          failure = error;
        },
      },
    );
  }

  /**
   * After a failed chunk: the offset to send from, by where the server stands; or, when the server
   * already holds the chunk, what `send` answers. `failure` is the error that made us ask.
   */
  private async resumeAt(
    offset: number,
    length: number,
    final: boolean,
    failure: unknown,
  ): Promise<number | { answer: UploadedFile | undefined }> {
    const state = await this.query();
    if (state.status === 'final' && final && state.file) return { answer: this.done(state.file) };
    const { status, received } = state;
    if (
      status !== 'active' ||
      !Number.isInteger(received) ||
      received < offset ||
      received > offset + length
    ) {
      throw new UploadStuckError(
        `The upload is ${status} with ${received} bytes; resending bytes ${offset}–${offset + length} cannot help`,
        failure,
      );
    }
    if (!final && received === offset + length) return { answer: undefined };
    return received;
  }

  /** Sends bytes [from − offset, length) of `chunk`; the file when `final`. */
  private async put(
    chunk: Buffer,
    offset: number,
    length: number,
    from: number,
    final: boolean,
  ): Promise<UploadedFile | undefined> {
    const res = await restCall(this.t, this.url, {
      method: 'POST',
      headers: {
        'x-goog-upload-command': final ? 'upload, finalize' : 'upload',
        'x-goog-upload-offset': String(from),
        'content-length': String(length - (from - offset)),
      },
      // As a one-piece stream: fetch copies a Uint8Array body, and those 8 MiB copies waiting
      // for the collector were most of the upload's memory (measured: peak 247 → 183 MiB).
      body: onePiece(chunk.subarray(from - offset, length)),
      ...(this.signal ? { signal: this.signal } : {}),
    });
    if (final) return this.done(fileOf(await res.json()));
    await res.body?.cancel();
    return undefined;
  }

  /** Where the upload stands: `X-Goog-Upload-Status`, bytes received, the file once final. */
  private async query(): Promise<{ status: string; received: number; file?: UploadedFile }> {
    const res = await restCall(this.t, this.url, {
      method: 'POST',
      headers: { 'x-goog-upload-command': 'query' },
      ...(this.signal ? { signal: this.signal } : {}),
    });
    const status = res.headers.get('x-goog-upload-status') ?? 'unknown';
    const received = Number(res.headers.get('x-goog-upload-size-received') ?? Number.NaN);
    if (status !== 'final') {
      await res.body?.cancel();
      return { status, received };
    }
    const file = fileOf(await res.json());
    return { status, received: file.sizeBytes, file };
  }

  private done(file: UploadedFile): UploadedFile {
    this.finished = true;
    return file;
  }

  /** Best effort, and never with the caller's signal: an aborted upload is cancelled all the same. */
  async cancel(): Promise<void> {
    if (this.finished) return;
    await restCall(this.t, this.url, { method: 'POST', headers: { 'x-goog-upload-command': 'cancel' } })
      .then((res) => res.body?.cancel())
      .catch(() => undefined);
  }
}

/** A stream of one piece, for a request body fetch sends without copying it. */
function onePiece(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}
