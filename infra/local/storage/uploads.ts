import { randomBytes } from 'node:crypto';
import { open, truncate, unlink } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { invalid, required, StorageHttpError } from './errors.js';
import { type Crc32cTables, ObjectHasher, type ObjectHashes } from './hashes.js';
import { appendStream, preconditionsFrom, readJson, sendEmpty, sendJson } from './http.js';
import { boundaryOf, parseMultipart } from './multipart.js';
import { objectResource } from './resources.js';
import {
  checkPreconditions,
  type ObjectRecord,
  type ObjectStore,
  type Preconditions,
  pickWritableMeta,
  type WritableObjectMeta,
} from './store.js';

/** What the upload handlers need from the server. */
export interface UploadContext {
  store: ObjectStore;
  tables: Crc32cTables;
  baseUrl: string;
  sessions: Map<string, UploadSession>;
  /**
   * A resumable request that does not finish the upload persists only whole multiples of this
   * many bytes (the real service: 256 KiB); the rest is dropped and the 308's `Range` says so.
   * 0 keeps every byte received.
   */
  uploadGranularity: number;
}

/** A resumable upload between its initiation and its final chunk. */
export interface UploadSession {
  id: string;
  bucket: string;
  name: string;
  meta: WritableObjectMeta;
  preconditions: Preconditions;
  /** Digests the client declared in the initiating metadata, checked at the end. */
  declared: Partial<ObjectHashes>;
  /** From `X-Upload-Content-Length`, when the client knew it up front. */
  declaredSize: number | undefined;
  tempFile: string;
  hasher: ObjectHasher;
  busy: boolean;
  result?: ObjectRecord;
}

/**
 * `POST /upload/storage/v1/b/{bucket}/o?uploadType=media|multipart|resumable`: the three
 * ways the client inserts an object. Bytes go straight to a temp file, hashed on the way.
 */
export async function handleUploadInsert(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: UploadContext,
  bucket: string,
  query: URLSearchParams,
): Promise<void> {
  ctx.store.getBucket(bucket);
  const preconditions = preconditionsFrom(query);
  const uploadType = query.get('uploadType') ?? 'media';
  if (uploadType === 'resumable') return startResumable(req, res, ctx, bucket, query, preconditions);
  if (uploadType === 'multipart') {
    const upload = await parseMultipart(
      req as AsyncIterable<Buffer>,
      boundaryOf(req.headers['content-type']),
    );
    const name = stringField(upload.metadata.name) ?? query.get('name') ?? undefined;
    if (!name) throw required('Required');
    const meta = pickWritableMeta(upload.metadata);
    meta.contentType ??= upload.dataContentType ?? 'application/octet-stream';
    const record = await writeWhole(ctx, upload.data, {
      bucket,
      name,
      meta,
      preconditions,
      declared: declaredHashes(upload.metadata, undefined),
    });
    return sendJson(res, 200, objectResource(record, ctx.baseUrl));
  }
  if (uploadType !== 'media') throw invalid(`Invalid upload type: ${uploadType}`);
  const name = query.get('name');
  if (!name) throw required('Required');
  const record = await writeWhole(ctx, req as AsyncIterable<Buffer>, {
    bucket,
    name,
    meta: { contentType: req.headers['content-type'] ?? 'application/octet-stream' },
    preconditions,
    declared: declaredHashes({}, req.headers['x-goog-hash']),
  });
  sendJson(res, 200, objectResource(record, ctx.baseUrl));
}

async function writeWhole(
  ctx: UploadContext,
  body: AsyncIterable<Buffer>,
  target: {
    bucket: string;
    name: string;
    meta: WritableObjectMeta;
    preconditions: Preconditions;
    declared: Partial<ObjectHashes>;
  },
): Promise<ObjectRecord> {
  const tempFile = ctx.store.tempPath();
  const hasher = new ObjectHasher(ctx.tables);
  const file = await open(tempFile, 'w');
  try {
    await appendStream(body, file, hasher);
  } catch (error) {
    await file.close();
    await unlink(tempFile).catch(() => undefined);
    throw error;
  }
  await file.close();
  const hashes = hasher.digest();
  try {
    verifyDeclared(target.declared, hashes);
  } catch (error) {
    await unlink(tempFile).catch(() => undefined);
    throw error;
  }
  return ctx.store.commit({ ...target, tempFile, size: hasher.size, hashes });
}

async function startResumable(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: UploadContext,
  bucket: string,
  query: URLSearchParams,
  preconditions: Preconditions,
): Promise<void> {
  const body = await readJson(req);
  const name = stringField(body.name) ?? query.get('name') ?? undefined;
  if (!name) throw required('Required');
  // The real service rejects a doomed upload at initiation rather than after the bytes.
  checkPreconditions(ctx.store.peek(bucket, name), preconditions);
  const meta = pickWritableMeta(body);
  const headerType = req.headers['x-upload-content-type'];
  meta.contentType ??= typeof headerType === 'string' ? headerType : 'application/octet-stream';
  const lengthHeader = req.headers['x-upload-content-length'];
  const id = randomBytes(24).toString('base64url');
  const tempFile = ctx.store.tempPath();
  await (await open(tempFile, 'w')).close();
  ctx.sessions.set(id, {
    id,
    bucket,
    name,
    meta,
    preconditions,
    declared: declaredHashes(body, undefined),
    declaredSize:
      typeof lengthHeader === 'string' && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined,
    tempFile,
    hasher: new ObjectHasher(ctx.tables),
    busy: false,
  });
  // The session URI names the host the client reached, as upstream: a proxy in between (a fault
  // injector in tests) stays in the path of the chunks.
  const path = `/upload/storage/v1/b/${encodeURIComponent(bucket)}/o`;
  let location: URL;
  try {
    location = new URL(path, req.headers.host ? `http://${req.headers.host}` : ctx.baseUrl);
  } catch {
    location = new URL(path, ctx.baseUrl);
  }
  location.searchParams.set('uploadType', 'resumable');
  location.searchParams.set('name', name);
  location.searchParams.set('upload_id', id);
  sendEmpty(res, 200, { location: location.toString() });
}

/** A parsed `Content-Range` of a resumable PUT. */
type ChunkRange =
  | { kind: 'query'; total: number | undefined }
  | { kind: 'data'; start: number; end: number | undefined; total: number | undefined };

function parseContentRange(header: string | undefined): ChunkRange | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes (?:(\*)|(\d+)-(\d+|\*))\/(\*|\d+)$/.exec(header.trim());
  if (!match) {
    // The client sends `bytes 0--1/0` for an empty object uploaded in chunks.
    const empty = /^bytes 0--1\/0$/.exec(header.trim());
    if (empty) return { kind: 'data', start: 0, end: undefined, total: 0 };
    throw invalid(`Invalid Content-Range header: ${header}`);
  }
  const total = match[4] === '*' ? undefined : Number(match[4]);
  if (match[1]) return { kind: 'query', total };
  return {
    kind: 'data',
    start: Number(match[2]),
    end: match[3] === '*' ? undefined : Number(match[3]),
    total,
  };
}

function rangeHeader(received: number): Record<string, string> {
  return received > 0 ? { range: `bytes=0-${received - 1}` } : {};
}

/**
 * `PUT` to a session URI: a chunk (`Content-Range: bytes a-b/total|*`), the last chunk, or a
 * status query (`bytes *\/*`). Incomplete → 308 with `Range: bytes=0-N` (no `Range` while
 * nothing is persisted); complete → 200 with the object. A request that does not complete the
 * upload, whole or cut off, persists its bytes up to the last multiple of the upload
 * granularity (every byte when it is 0); the client reads `Range` and resends the rest. A
 * resent overlap is skipped, which is the recovery the client's retry logic expects.
 */
export async function handleSessionPut(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: UploadContext,
  uploadId: string,
): Promise<void> {
  const session = sessionOf(ctx, uploadId);
  if (session.result) return sendJson(res, 200, objectResource(session.result, ctx.baseUrl));
  if (session.busy) {
    throw new StorageHttpError(503, 'backendError', 'Another request is writing to this upload; retry.');
  }
  const contentRange = req.headers['content-range'];
  const range = parseContentRange(typeof contentRange === 'string' ? contentRange : undefined) ?? {
    kind: 'data' as const,
    start: 0,
    end: undefined,
    total: undefined,
  };
  session.busy = true;
  try {
    let complete: boolean;
    if (range.kind === 'query') {
      req.resume();
      complete = range.total !== undefined && session.hasher.size === range.total;
    } else {
      const received = session.hasher.size;
      if (range.start > received) {
        req.resume();
        throw invalid(
          `Invalid request. According to the Content-Range header, the upload offset is ${range.start} byte(s), which exceeds already uploaded size of ${received} byte(s).`,
        );
      }
      const checkpoints = new GranularHasher(session.hasher, ctx.uploadGranularity);
      const file = await open(session.tempFile, 'a');
      let cutOff: unknown;
      try {
        await appendStream(req as AsyncIterable<Buffer>, file, checkpoints, received - range.start);
      } catch (error) {
        cutOff = error;
      } finally {
        await file.close();
      }
      const size = session.hasher.size;
      const total = range.total ?? (range.end === undefined ? size : session.declaredSize);
      complete = cutOff === undefined && total !== undefined && size === total;
      if (!complete) await keepWholeUnits(session, checkpoints);
      if (cutOff !== undefined) {
        // The client went away mid-request: nothing to answer, and nothing unexpected.
        if (req.destroyed) return;
        throw cutOff;
      }
      if (total !== undefined && size > total) {
        throw invalid(`The upload has ${size} bytes, more than the declared total of ${total}.`);
      }
    }
    if (!complete) return sendEmpty(res, 308, rangeHeader(session.hasher.size));
    const record = await finish(ctx, session, req.headers['x-goog-hash']);
    sendJson(res, 200, objectResource(record, ctx.baseUrl));
  } finally {
    session.busy = false;
  }
}

/**
 * Hashes like the session's hasher and remembers its state at the last multiple of
 * `granularity`, so a request that does not complete the upload can fall back to it.
 */
class GranularHasher {
  readonly hasher: ObjectHasher;
  readonly #granularity: number;
  /** The hasher's state at the last whole unit seen (or at the request's start). */
  checkpoint: ObjectHasher | undefined;

  constructor(hasher: ObjectHasher, granularity: number) {
    this.hasher = hasher;
    this.#granularity = granularity;
    if (granularity > 0) this.checkpoint = hasher.clone();
  }

  update(chunk: Uint8Array): void {
    const unit = this.#granularity;
    if (unit <= 0) {
      this.hasher.update(chunk);
      return;
    }
    let rest = chunk;
    while (rest.length > 0) {
      const toBoundary = unit - (this.hasher.size % unit);
      const part = rest.subarray(0, toBoundary);
      this.hasher.update(part);
      rest = rest.subarray(part.length);
      if (this.hasher.size % unit === 0) this.checkpoint = this.hasher.clone();
    }
  }
}

/** Drops what lies past the last whole unit: the file is cut there and the hasher rewound. */
async function keepWholeUnits(session: UploadSession, checkpoints: GranularHasher): Promise<void> {
  const kept = checkpoints.checkpoint;
  if (kept === undefined || kept.size === session.hasher.size) return;
  await truncate(session.tempFile, kept.size);
  session.hasher = kept;
}

async function finish(
  ctx: UploadContext,
  session: UploadSession,
  hashHeader: string | string[] | undefined,
): Promise<ObjectRecord> {
  const hashes = session.hasher.digest();
  try {
    verifyDeclared({ ...session.declared, ...declaredHashes({}, hashHeader) }, hashes);
    const record = await ctx.store.commit({
      bucket: session.bucket,
      name: session.name,
      tempFile: session.tempFile,
      size: session.hasher.size,
      hashes,
      meta: session.meta,
      preconditions: session.preconditions,
    });
    session.result = record;
    return record;
  } catch (error) {
    // A failed finalisation ends the session, as on the real service.
    ctx.sessions.delete(session.id);
    await unlink(session.tempFile).catch(() => undefined);
    throw error;
  }
}

/** `DELETE` on a session URI cancels it; the real service answers 499. */
export async function handleSessionCancel(
  res: ServerResponse,
  ctx: UploadContext,
  uploadId: string,
): Promise<void> {
  const session = sessionOf(ctx, uploadId);
  ctx.sessions.delete(uploadId);
  if (!session.result) await unlink(session.tempFile).catch(() => undefined);
  sendEmpty(res, 499);
}

function sessionOf(ctx: UploadContext, uploadId: string): UploadSession {
  const session = ctx.sessions.get(uploadId);
  if (!session) throw new StorageHttpError(404, 'notFound', `No such upload: ${uploadId}`);
  return session;
}

function stringField(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Digests from resource fields (`md5Hash`, `crc32c`) and/or an `X-Goog-Hash` header. */
function declaredHashes(
  resource: Record<string, unknown>,
  header: string | string[] | undefined,
): Partial<ObjectHashes> {
  const declared: Partial<ObjectHashes> = {};
  const md5 = stringField(resource.md5Hash);
  const crc = stringField(resource.crc32c);
  if (md5) declared.md5Hash = md5;
  if (crc) declared.crc32c = crc;
  const text = Array.isArray(header) ? header.join(',') : header;
  for (const pair of (text ?? '').split(',')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const key = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (key === 'md5') declared.md5Hash = value;
    if (key === 'crc32c') declared.crc32c = value;
  }
  return declared;
}

function verifyDeclared(declared: Partial<ObjectHashes>, actual: ObjectHashes): void {
  if (declared.md5Hash !== undefined && declared.md5Hash !== actual.md5Hash) {
    throw invalid(
      `Provided MD5 hash "${declared.md5Hash}" doesn't match calculated MD5 hash "${actual.md5Hash}".`,
    );
  }
  if (declared.crc32c !== undefined && declared.crc32c !== actual.crc32c) {
    throw invalid(`Provided CRC32C "${declared.crc32c}" doesn't match calculated CRC32C "${actual.crc32c}".`);
  }
}
