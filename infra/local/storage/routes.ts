import { type FileHandle, open, unlink } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { invalid, required, StorageHttpError } from './errors.js';
import type { Eventarc } from './eventarc.js';
import { ObjectHasher } from './hashes.js';
import { appendStream, preconditionsFrom, readJson, sendEmpty, sendJson } from './http.js';
import { bucketResource, objectResource } from './resources.js';
import { checkPreconditions, type ObjectRecord, pickWritableMeta } from './store.js';
import { handleSessionCancel, handleSessionPut, handleUploadInsert, type UploadContext } from './uploads.js';

/** Everything a request handler may touch. */
export interface RouteContext extends UploadContext {
  eventarc: Eventarc;
  projectId: string;
  /** Reports an unexpected (500) error; the client only sees a generic body. */
  onError: (error: unknown) => void;
}

/** Compose accepts at most this many sources, as the real service. */
const MAX_COMPOSE_SOURCES = 32;

/**
 * Serves one request of the JSON API. Paths are accepted with and without the
 * `/storage/v1` prefix because the client drops it when `STORAGE_EMULATOR_HOST` is set
 * and keeps it with `apiEndpoint`; uploads always come under `/upload/storage/v1`.
 */
export async function route(req: IncomingMessage, res: ServerResponse, ctx: RouteContext): Promise<void> {
  try {
    await dispatch(req, res, ctx);
  } catch (error) {
    if (res.headersSent) {
      res.destroy(error instanceof Error ? error : undefined);
      return;
    }
    if (error instanceof StorageHttpError) {
      req.resume();
      if (error.statusCode === 304) return sendEmpty(res, 304);
      return sendJson(res, error.statusCode, error.toBody(), error.headers);
    }
    ctx.onError(error);
    req.resume();
    sendJson(res, 500, new StorageHttpError(500, 'backendError', 'Backend Error').toBody());
  }
}

async function dispatch(req: IncomingMessage, res: ServerResponse, ctx: RouteContext): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://emulator.invalid');
  const method = req.method ?? 'GET';
  const query = url.searchParams;
  let path = url.pathname;
  let upload = false;
  for (const prefix of ['/upload/storage/v1/', '/download/storage/v1/', '/storage/v1/']) {
    if (path.startsWith(prefix)) {
      upload = prefix === '/upload/storage/v1/';
      path = path.slice(prefix.length - 1);
      break;
    }
  }
  if (path === '/_emulator/health') return sendJson(res, 200, { ok: true });
  if (path === '/_emulator/events') {
    return sendJson(res, 200, { stats: ctx.eventarc.stats(), events: ctx.eventarc.events() });
  }
  const segments = path
    .split('/')
    .slice(1)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw invalid(`Invalid path segment: ${s}`);
      }
    });
  if (segments[0] !== 'b') throw new StorageHttpError(404, 'notFound', 'Not Found');
  const bucket = segments[1];

  if (upload) {
    if (bucket === undefined || segments[2] !== 'o' || segments.length !== 3) {
      throw new StorageHttpError(404, 'notFound', 'Not Found');
    }
    const uploadId = query.get('upload_id');
    if (uploadId !== null) {
      if (method === 'PUT' || method === 'POST') return handleSessionPut(req, res, ctx, uploadId);
      if (method === 'DELETE') return handleSessionCancel(res, ctx, uploadId);
    } else if (method === 'POST') {
      return handleUploadInsert(req, res, ctx, bucket, query);
    }
    throw methodNotAllowed();
  }

  if (bucket === undefined || bucket === '') return bucketCollection(req, res, ctx, method, query);
  if (segments.length === 2) return bucketItem(req, res, ctx, method, bucket);
  if (segments[2] !== 'o') throw new StorageHttpError(404, 'notFound', 'Not Found');
  if (segments.length === 3) {
    if (method === 'GET') return listObjects(res, ctx, bucket, query);
    throw methodNotAllowed();
  }
  const rest = segments.slice(3);
  const action = rest[1];
  if (rest.length === 2 && action === 'compose' && method === 'POST') {
    return compose(req, res, ctx, bucket, rest[0]!, query);
  }
  if (
    rest.length === 6 &&
    (action === 'copyTo' || action === 'rewriteTo') &&
    rest[2] === 'b' &&
    rest[4] === 'o'
  ) {
    if (method !== 'POST') throw methodNotAllowed();
    return copy(
      req,
      res,
      ctx,
      { bucket, name: rest[0]! },
      { bucket: rest[3]!, name: rest[5]! },
      action,
      query,
    );
  }
  // Unencoded slashes in a name are accepted leniently: the rest of the path is the name.
  return objectItem(req, res, ctx, method, bucket, rest.join('/'), query);
}

function methodNotAllowed(): StorageHttpError {
  return new StorageHttpError(405, 'methodNotAllowed', 'Method Not Allowed');
}

// ---- buckets -------------------------------------------------------------------------------

async function bucketCollection(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RouteContext,
  method: string,
  query: URLSearchParams,
): Promise<void> {
  if (method === 'GET') {
    const project = query.get('project') ?? undefined;
    const buckets = ctx.store.listBuckets(project, query.get('prefix') ?? '');
    return sendJson(res, 200, {
      kind: 'storage#buckets',
      ...(buckets.length > 0 ? { items: buckets.map((b) => bucketResource(b, ctx.baseUrl)) } : {}),
    });
  }
  if (method !== 'POST') throw methodNotAllowed();
  const body = await readJson(req);
  if (typeof body.name !== 'string' || body.name === '') throw required('Required');
  const project = query.get('project') ?? ctx.projectId;
  const bucket = await ctx.store.createBucket(body.name, project, {
    ...(typeof body.location === 'string' ? { location: body.location } : {}),
    ...(typeof body.storageClass === 'string' ? { storageClass: body.storageClass } : {}),
    ...(isStringMap(body.labels) ? { labels: body.labels } : {}),
  });
  sendJson(res, 200, bucketResource(bucket, ctx.baseUrl));
}

async function bucketItem(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RouteContext,
  method: string,
  bucket: string,
): Promise<void> {
  if (method === 'GET') return sendJson(res, 200, bucketResource(ctx.store.getBucket(bucket), ctx.baseUrl));
  if (method === 'DELETE') {
    await ctx.store.deleteBucket(bucket);
    return sendEmpty(res, 204);
  }
  if (method === 'PATCH' || method === 'PUT') {
    const body = await readJson(req);
    const labels =
      typeof body.labels === 'object' && body.labels !== null
        ? (body.labels as Record<string, string | null>)
        : undefined;
    const updated = await ctx.store.patchBucket(bucket, {
      ...(labels ? { labels } : {}),
      ...(typeof body.storageClass === 'string' ? { storageClass: body.storageClass } : {}),
    });
    return sendJson(res, 200, bucketResource(updated, ctx.baseUrl));
  }
  throw methodNotAllowed();
}

function isStringMap(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.values(value as Record<string, unknown>).every((v) => typeof v === 'string')
  );
}

// ---- objects -------------------------------------------------------------------------------

async function objectItem(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RouteContext,
  method: string,
  bucket: string,
  name: string,
  query: URLSearchParams,
): Promise<void> {
  const generation = query.get('generation') ?? undefined;
  if (method === 'GET' || method === 'HEAD') {
    if (query.get('alt') === 'media') return download(req, res, ctx, bucket, name, query);
    const record = ctx.store.get(bucket, name, generation);
    checkPreconditions(record, preconditionsFrom(query), 'read');
    return sendJson(res, 200, objectResource(record, ctx.baseUrl));
  }
  if (method === 'PATCH' || method === 'PUT') {
    const body = await readJson(req);
    const record = await ctx.store.patch(bucket, name, body, preconditionsFrom(query), method === 'PUT');
    return sendJson(res, 200, objectResource(record, ctx.baseUrl));
  }
  if (method === 'DELETE') {
    await ctx.store.delete(bucket, name, preconditionsFrom(query), generation);
    return sendEmpty(res, 204);
  }
  throw methodNotAllowed();
}

function listObjects(res: ServerResponse, ctx: RouteContext, bucket: string, query: URLSearchParams): void {
  const maxResults = query.get('maxResults');
  if (maxResults !== null && !/^\d+$/.test(maxResults))
    throw invalid(`Invalid value for maxResults: ${maxResults}`);
  const optionalString = (key: string) => query.get(key) ?? undefined;
  const page = ctx.store.list(bucket, {
    ...(optionalString('prefix') !== undefined ? { prefix: optionalString('prefix')! } : {}),
    ...(optionalString('delimiter') !== undefined ? { delimiter: optionalString('delimiter')! } : {}),
    ...(maxResults !== null ? { maxResults: Number(maxResults) } : {}),
    ...(optionalString('pageToken') ? { pageToken: optionalString('pageToken')! } : {}),
    ...(optionalString('startOffset') !== undefined ? { startOffset: optionalString('startOffset')! } : {}),
    ...(optionalString('endOffset') !== undefined ? { endOffset: optionalString('endOffset')! } : {}),
    includeTrailingDelimiter: query.get('includeTrailingDelimiter') === 'true',
  });
  sendJson(res, 200, {
    kind: 'storage#objects',
    ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
    ...(page.prefixes.length > 0 ? { prefixes: page.prefixes } : {}),
    ...(page.items.length > 0 ? { items: page.items.map((r) => objectResource(r, ctx.baseUrl)) } : {}),
  });
}

/** `bytes=a-b`, `bytes=a-` or `bytes=-n` against `size`; undefined = whole object. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (header === undefined || size === 0) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) {
    throw new StorageHttpError(
      416,
      'requestedRangeNotSatisfiable',
      'The requested range cannot be satisfied.',
      {
        headers: { 'content-range': `bytes */${size}` },
      },
    );
  }
  return { start, end };
}

/**
 * `alt=media`: streams the blob with the headers the client's integrity check reads
 * (`x-goog-hash`, `x-goog-stored-content-encoding`, ...); `Range` gives a 206.
 */
async function download(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RouteContext,
  bucket: string,
  name: string,
  query: URLSearchParams,
): Promise<void> {
  const generation = query.get('generation') ?? undefined;
  let record: ObjectRecord | undefined;
  let file: FileHandle | undefined;
  // An overwrite may unlink the blob between the lookup and the open: look up again.
  for (let attempt = 0; !file; attempt++) {
    record = ctx.store.get(bucket, name, generation);
    try {
      file = await open(record.blobPath, 'r');
    } catch (error) {
      if (attempt >= 3 || (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  try {
    const current = record!;
    checkPreconditions(current, preconditionsFrom(query), 'read');
    const rangeHeader = req.headers.range;
    const range = parseRange(typeof rangeHeader === 'string' ? rangeHeader : undefined, current.size);
    const hashes = [`crc32c=${current.crc32c}`, ...(current.md5Hash ? [`md5=${current.md5Hash}`] : [])].join(
      ',',
    );
    const headers: Record<string, string> = {
      'content-type': current.contentType ?? 'application/octet-stream',
      'x-goog-hash': hashes,
      'x-goog-generation': current.generation,
      'x-goog-metageneration': String(current.metageneration),
      'x-goog-stored-content-length': String(current.size),
      'x-goog-stored-content-encoding': current.contentEncoding ?? 'identity',
      'x-goog-storage-class': 'STANDARD',
      etag: `"${current.md5Hash ? Buffer.from(current.md5Hash, 'base64').toString('hex') : current.crc32c}"`,
      'last-modified': new Date(current.updated).toUTCString(),
      'accept-ranges': 'bytes',
      'cache-control': 'no-cache, no-store, max-age=0, must-revalidate',
    };
    if (current.contentEncoding) headers['content-encoding'] = current.contentEncoding;
    if (current.contentDisposition) headers['content-disposition'] = current.contentDisposition;
    if (current.contentLanguage) headers['content-language'] = current.contentLanguage;
    const start = range?.start ?? 0;
    const end = range?.end ?? current.size - 1;
    headers['content-length'] = String(Math.max(0, end - start + 1));
    if (range) headers['content-range'] = `bytes ${start}-${end}/${current.size}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD' || current.size === 0) {
      res.end();
      return;
    }
    const stream = file.createReadStream({ start, end, autoClose: false });
    await pipeline(stream, res);
  } finally {
    await file.close().catch(() => undefined);
  }
}

async function copy(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RouteContext,
  from: { bucket: string; name: string },
  to: { bucket: string; name: string },
  action: 'copyTo' | 'rewriteTo',
  query: URLSearchParams,
): Promise<void> {
  const body = await readJson(req);
  const source = ctx.store.get(from.bucket, from.name, query.get('sourceGeneration') ?? undefined);
  checkPreconditions(source, preconditionsFrom(query, 'ifSource'));
  ctx.store.getBucket(to.bucket);
  // An empty body copies the source's metadata; given fields override it.
  const meta = {
    ...pickWritableMeta(source as unknown as Record<string, unknown>),
    ...pickWritableMeta(body),
  };
  const tempFile = await ctx.store.cloneBlob(source);
  const record = await ctx.store.commit({
    bucket: to.bucket,
    name: to.name,
    tempFile,
    size: source.size,
    hashes: { crc32c: source.crc32c, ...(source.md5Hash ? { md5Hash: source.md5Hash } : {}) },
    meta,
    preconditions: preconditionsFrom(query),
    ...(source.componentCount !== undefined ? { componentCount: source.componentCount } : {}),
  });
  const resource = objectResource(record, ctx.baseUrl);
  if (action === 'copyTo') return sendJson(res, 200, resource);
  sendJson(res, 200, {
    kind: 'storage#rewriteResponse',
    totalBytesRewritten: String(record.size),
    objectSize: String(record.size),
    done: true,
    resource,
  });
}

/**
 * Concatenates up to 32 sources into a new object. Like the real service, the result has a
 * crc32c and a `componentCount` but no md5Hash.
 */
async function compose(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RouteContext,
  bucket: string,
  name: string,
  query: URLSearchParams,
): Promise<void> {
  const body = await readJson(req);
  const sources = body.sourceObjects;
  if (!Array.isArray(sources) || sources.length === 0) throw required('Required');
  if (sources.length > MAX_COMPOSE_SOURCES) {
    throw invalid(`The number of source components provided (${sources.length}) exceeds the maximum (32).`);
  }
  const records = sources.map((entry: unknown) => {
    if (typeof entry !== 'object' || entry === null) throw invalid('Invalid source object.');
    const source = entry as Record<string, unknown>;
    if (typeof source.name !== 'string') throw required('Required');
    const generation = source.generation === undefined ? undefined : String(source.generation);
    const record = ctx.store.get(bucket, source.name, generation);
    const conditions = source.objectPreconditions as Record<string, unknown> | undefined;
    if (conditions?.ifGenerationMatch !== undefined) {
      checkPreconditions(record, { ifGenerationMatch: String(conditions.ifGenerationMatch) });
    }
    return record;
  });
  const destination =
    typeof body.destination === 'object' && body.destination !== null
      ? (body.destination as Record<string, unknown>)
      : {};
  const tempFile = ctx.store.tempPath();
  const hasher = new ObjectHasher(ctx.tables);
  const out = await open(tempFile, 'w');
  try {
    for (const record of records) {
      const input = await open(record.blobPath, 'r');
      try {
        await appendStream(input.createReadStream({ autoClose: false }), out, hasher);
      } finally {
        await input.close();
      }
    }
  } catch (error) {
    await out.close();
    await unlink(tempFile).catch(() => undefined);
    throw error;
  }
  await out.close();
  const record = await ctx.store.commit({
    bucket,
    name,
    tempFile,
    size: hasher.size,
    hashes: { crc32c: hasher.digest().crc32c },
    meta: pickWritableMeta(destination),
    preconditions: preconditionsFrom(query),
    componentCount: records.reduce((sum, r) => sum + (r.componentCount ?? 1), 0),
  });
  sendJson(res, 200, objectResource(record, ctx.baseUrl));
}
