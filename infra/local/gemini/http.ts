import type { IncomingMessage, ServerResponse } from 'node:http';
import { sleep as abortableSleep } from '../../../functions/api/sleep.js';
import { escapeHtml } from '../../../functions/ingest/page.js';
import { readBody as readWholeBody } from '../http-body.js';
import { sendJson } from '../json-response.js';
import { invalidArgument, invalidJson, StandInHttpError } from './errors.js';

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

/**
 * One page of a list as the Gemini API pages `files` and `batches`: newest first (by `createTime`,
 * then id), `pageSize` 10 by default and at most 100, `pageToken` an opaque next offset.
 */
export function pageNewestFirst<T extends { createTime: number; id: string }>(
  items: Iterable<T>,
  pageSize: number | undefined,
  pageToken: string | undefined,
): { page: T[]; nextPageToken?: string } {
  const size = Math.min(100, Math.max(1, pageSize ?? 10));
  const start = pageToken ? Number(Buffer.from(pageToken, 'base64url').toString('utf8')) : 0;
  if (!Number.isInteger(start) || start < 0) throw invalidArgument('Invalid page token.');
  const all = [...items].sort((a, b) => b.createTime - a.createTime || a.id.localeCompare(b.id));
  const page = all.slice(start, start + size);
  const next =
    start + size < all.length ? Buffer.from(String(start + size)).toString('base64url') : undefined;
  return { page, ...(next ? { nextPageToken: next } : {}) };
}

/** Resolves after `ms` milliseconds, or at once when `signal` aborts (a stand-in's wait never fails). */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return;
  await abortableSleep(ms, signal).catch((err) => {
    if (!signal?.aborted) throw err;
  });
}
