import type { FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../http-body.js';
import { sendJson } from '../json-response.js';
import { invalid } from './errors.js';
import type { ObjectHasher } from './hashes.js';
import type { Preconditions } from './store.js';

export { sendJson };

/** Largest JSON request body accepted (metadata, patches, compose requests). */
const MAX_JSON_BYTES = 4 * 1024 * 1024;

/** Sends a status with no body (204, 308, 499). */
export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-length': '0', ...headers });
  res.end();
}

/** Reads a small JSON body; an empty body is `{}`. Anything but an object is a 400. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBody(req, MAX_JSON_BYTES, () => invalid('Request body too large.'));
  const text = body.toString('utf8').trim();
  if (text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid('Parse Error');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalid('Invalid JSON payload.');
  return parsed as Record<string, unknown>;
}

/** The `if*Match` query parameters, optionally under a prefix such as `ifSource`. */
export function preconditionsFrom(query: URLSearchParams, prefix = 'if'): Preconditions {
  const pick = (suffix: string) => query.get(`${prefix}${suffix}`) ?? undefined;
  const conditions: Preconditions = {};
  const entries: [keyof Preconditions, string | undefined][] = [
    ['ifGenerationMatch', pick('GenerationMatch')],
    ['ifGenerationNotMatch', pick('GenerationNotMatch')],
    ['ifMetagenerationMatch', pick('MetagenerationMatch')],
    ['ifMetagenerationNotMatch', pick('MetagenerationNotMatch')],
  ];
  for (const [key, value] of entries) {
    if (value === undefined) continue;
    if (!/^\d+$/.test(value)) throw invalid(`Invalid value for ${key}: ${value}`);
    conditions[key] = value;
  }
  return conditions;
}

/**
 * Streams `source` to the end of `file` while hashing, one chunk at a time: each chunk is
 * written before the next is pulled, so memory stays at one socket read and the hash always
 * covers exactly the bytes on disk, even when the request is cut off. `skip` drops leading
 * bytes the server already has (a resent chunk overlap). Returns the bytes written.
 */
export async function appendStream(
  source: AsyncIterable<Uint8Array>,
  file: FileHandle,
  hasher: Pick<ObjectHasher, 'update'>,
  skip = 0,
): Promise<number> {
  let toSkip = skip;
  let written = 0;
  for await (const raw of source) {
    let chunk = raw;
    if (toSkip > 0) {
      const dropped = Math.min(toSkip, chunk.length);
      chunk = chunk.subarray(dropped);
      toSkip -= dropped;
      if (chunk.length === 0) continue;
    }
    await writeFully(file, chunk);
    hasher.update(chunk);
    written += chunk.length;
  }
  return written;
}

async function writeFully(file: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await file.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}
