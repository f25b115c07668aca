import type { IncomingMessage, ServerResponse } from 'node:http';
import { sleep as abortableSleep } from '../../../functions/api/sleep.js';
import { escapeHtml } from '../../../functions/ingest/page.js';
import { readBody as readWholeBody } from '../http-body.js';
import { sendJson } from '../json-response.js';
import { invalidJson, StandInHttpError } from './errors.js';

export { sendJson };

/** Largest JSON body accepted (inline images make requests big; uploads are streamed instead). */
export const MAX_JSON_BODY_BYTES = 64 * 1024 * 1024;

/** Reads a whole (small) request body; beyond `limit` bytes answers `tooLarge(limit)` (by default the stand-in's own 413). */
export function readBody(
  req: IncomingMessage,
  limit = MAX_JSON_BODY_BYTES,
  tooLarge: (limit: number) => StandInHttpError = payloadTooLarge,
): Promise<Buffer> {
  return readWholeBody(req, limit, tooLarge);
}

function payloadTooLarge(limit: number): StandInHttpError {
  return new StandInHttpError(
    413,
    'INVALID_ARGUMENT',
    `Request payload size exceeds the limit: ${limit} bytes.`,
  );
}

/** Parses a JSON body; an empty body is `{}`. Invalid JSON is 400 with the real service's wording. */
export function parseJson(body: Buffer): unknown {
  const text = body.toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const firstLine = text.split('\n', 1)[0]?.slice(0, 80) ?? '';
    throw invalidJson(`Unexpected token.\n${firstLine}\n^ (${reason})`);
  }
}

/** Sends a Google-style error body. */
export function sendError(res: ServerResponse, error: StandInHttpError): void {
  sendJson(res, error.httpStatus, error.body, error.headers);
}

/**
 * The Google front end's answer to a path no API serves: an HTML 404, not a JSON error body.
 * (The SDK wraps it into an ApiError with status 404 all the same.)
 */
export function sendUnknownRoute(res: ServerResponse, path: string): void {
  const html =
    '<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n' +
    `  <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>${escapeHtml(path)}</code> ` +
    'was not found on this server.  <ins>That’s all we know.</ins>\n';
  res.writeHead(404, {
    'content-type': 'text/html; charset=UTF-8',
    'content-length': String(Buffer.byteLength(html)),
  });
  res.end(html);
}

/** Resolves after `ms` milliseconds, or at once when `signal` aborts (a stand-in's wait never fails). */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return;
  await abortableSleep(ms, signal).catch((err) => {
    if (!signal?.aborted) throw err;
  });
}
