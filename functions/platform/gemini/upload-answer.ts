/**
 * What the last request of a Files API upload answers: the file, or why there is none. Upstream has
 * answered a final chunk 200 without a `file` (python-genai #1248, #1590) and with an error body in
 * its place (#1547); both are told apart here from a file, so the uploader never takes them for one.
 */
import { GeminiCallError } from './client.js';

/** An uploaded file as the Files API names it. */
export interface UploadedFile {
  name: string;
  sizeBytes: number;
}

/**
 * The final chunk was answered 200 without a `file` (upstream has been seen to: python-genai #1248,
 * #1590), or with an error body in its place. No status of its own: the caller counts it as a failed
 * upload and bounds how often the whole file is sent again, instead of treating it as transient.
 */
export class UploadAnswerError extends GeminiCallError {
  constructor(message: string, body: unknown) {
    super(message, 200, body);
  }
}

/**
 * `{file: {name, sizeBytes}}` of a final upload answer (sizeBytes is an int64 string). An error body
 * in its place (python-genai #1547: a 200 carrying `{"error": {"code": 400, …}}`) throws with that
 * error's code, so a refusal (4xx) is seen as one; anything else without a file is an
 * `UploadAnswerError`.
 */
export function fileOf(body: unknown): UploadedFile {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (error && typeof error === 'object') {
    const code = typeof error.code === 'number' && error.code >= 400 ? error.code : undefined;
    const message = `The final upload answer is an error: ${String(error.message ?? 'no message')}`;
    throw code !== undefined && code < 500
      ? new GeminiCallError(message, code, body)
      : new UploadAnswerError(message, body);
  }
  const file = (body as { file?: { name?: unknown; sizeBytes?: unknown } } | null)?.file;
  const sizeBytes = Number(file?.sizeBytes ?? 0);
  if (typeof file?.name !== 'string' || !Number.isSafeInteger(sizeBytes)) {
    throw new UploadAnswerError('The final upload answer names no file', body);
  }
  return { name: file.name, sizeBytes };
}
