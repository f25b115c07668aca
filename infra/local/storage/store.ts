import { createHash, randomUUID } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { conditionNotMet, invalid, noSuchBucket, noSuchObject, StorageHttpError } from './errors.js';
import type { ObjectHashes } from './hashes.js';

/** Object metadata a client may set on insert, patch, copy and compose. */
export interface WritableObjectMeta {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  customTime?: string;
  metadata?: Record<string, string>;
}

/** What the emulator knows about one live object; the bytes are in `blobPath`. */
export interface ObjectRecord extends WritableObjectMeta {
  bucket: string;
  name: string;
  /** Microseconds since the epoch, as a decimal string (the real service's format). */
  generation: string;
  metageneration: number;
  size: number;
  /** Absent on composite objects, as on the real service. */
  md5Hash?: string;
  crc32c: string;
  componentCount?: number;
  timeCreated: string;
  updated: string;
  blobPath: string;
}

/** A bucket; only the fields the client and the system read. */
export interface BucketRecord {
  name: string;
  projectId: string;
  timeCreated: string;
  updated: string;
  metageneration: number;
  location: string;
  storageClass: string;
  labels?: Record<string, string>;
}

/** The `if*` query parameters of the JSON API, already parsed. */
export interface Preconditions {
  ifGenerationMatch?: string;
  ifGenerationNotMatch?: string;
  ifMetagenerationMatch?: string;
  ifMetagenerationNotMatch?: string;
}

/** A change the Eventarc stand-in turns into a CloudEvent. */
export type StoreChange = { kind: 'finalized' | 'deleted' | 'metadataUpdated'; object: ObjectRecord };

/** Options of {@link ObjectStore}. */
export interface ObjectStoreOptions {
  /**
   * Keep the index (buckets, objects, their metadata and generations) on disk beside the blobs,
   * so a new store on the same `dataDir` serves what the last one held. Off: the index lives as
   * long as the process.
   */
  durable?: boolean;
}

/** Options of {@link ObjectStore.list}. */
export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  maxResults?: number;
  pageToken?: string;
  startOffset?: string;
  endOffset?: string;
  includeTrailingDelimiter?: boolean;
}

/** One page of a listing. */
export interface ListPage {
  items: ObjectRecord[];
  prefixes: string[];
  nextPageToken?: string;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
const DEFAULT_PAGE_SIZE = 1000;

/**
 * Throws the real service's 412 (or, for reads of `*NotMatch`, 304) when a precondition
 * does not hold for `current` (undefined = no live object). `ifGenerationMatch=0` means
 * "only if no live object exists".
 */
export function checkPreconditions(
  current: ObjectRecord | undefined,
  conditions: Preconditions,
  mode: 'read' | 'write' = 'write',
): void {
  const generation = current?.generation ?? '0';
  const { ifGenerationMatch, ifGenerationNotMatch, ifMetagenerationMatch, ifMetagenerationNotMatch } =
    conditions;
  if (ifGenerationMatch !== undefined && ifGenerationMatch !== generation) throw conditionNotMet();
  if (
    ifMetagenerationMatch !== undefined &&
    (!current || String(current.metageneration) !== ifMetagenerationMatch)
  ) {
    throw conditionNotMet();
  }
  const notModified = () =>
    mode === 'read' ? new StorageHttpError(304, 'notModified', 'Not Modified') : conditionNotMet();
  if (ifGenerationNotMatch !== undefined && ifGenerationNotMatch === generation) throw notModified();
  if (
    ifMetagenerationNotMatch !== undefined &&
    current &&
    String(current.metageneration) === ifMetagenerationNotMatch
  ) {
    throw notModified();
  }
}

/** Hands out strictly increasing microsecond timestamps, the shape of real generations. */
class GenerationClock {
  #last = 0n;

  next(): bigint {
    const now = BigInt(Date.now()) * 1000n;
    this.#last = now > this.#last ? now : this.#last + 1n;
    return this.#last;
  }

  /** Never hands out a value at or below `seen` (generations loaded from disk). */
  observe(seen: bigint): void {
    if (seen > this.#last) this.#last = seen;
  }
}

/** An object record as the durable index stores it: the blob by file name, not by path. */
type StoredObject = Omit<ObjectRecord, 'blobPath'> & { blob: string };

function isoFromMicros(micros: bigint): string {
  return new Date(Number(micros / 1000n)).toISOString();
}

/** Lets a page token carry where the previous page stopped without exposing names in clear. */
function encodePageToken(after: string, skipPrefix: boolean): string {
  return Buffer.from(JSON.stringify({ a: after, p: skipPrefix })).toString('base64url');
}

function decodePageToken(token: string): { after: string; skipPrefix: boolean } {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'a' in parsed && typeof parsed.a === 'string') {
      return { after: parsed.a, skipPrefix: 'p' in parsed && parsed.p === true };
    }
  } catch {
    // fall through to the 400 below
  }
  throw invalid('Invalid pageToken.');
}

/**
 * Buckets and objects: an in-memory index over blob files in `dataDir`. Bytes never pass
 * through here; callers stream them into a temp file from {@link tempPath} and then
 * {@link commit} it, which is when preconditions are checked and the new generation is
 * born. The index is served from memory; when `durable`, every change is also written to
 * `dataDir/index/` (one JSON file per bucket and per object, replaced atomically) before the
 * request that made it is answered, and {@link init} loads it back.
 */
export class ObjectStore {
  readonly #dataDir: string;
  readonly #durable: boolean;
  readonly #buckets = new Map<string, BucketRecord>();
  readonly #objects = new Map<string, Map<string, ObjectRecord>>();
  readonly #clock = new GenerationClock();
  readonly #onChange: (change: StoreChange) => void;
  /** One write chain per index file, so the file ends up holding the latest state. */
  readonly #writes = new Map<string, Promise<void>>();

  constructor(dataDir: string, onChange: (change: StoreChange) => void, options: ObjectStoreOptions = {}) {
    this.#dataDir = dataDir;
    this.#onChange = onChange;
    this.#durable = options.durable ?? false;
  }

  /**
   * Creates the blob and temp folders. When durable, loads the index left by an earlier store,
   * drops entries whose blob is gone, deletes blobs no entry names and leftover temp files
   * (uploads in progress do not survive a restart).
   */
  async init(): Promise<void> {
    await mkdir(join(this.#dataDir, 'blobs'), { recursive: true });
    await mkdir(join(this.#dataDir, 'tmp'), { recursive: true });
    if (!this.#durable) return;
    await mkdir(join(this.#dataDir, 'index', 'buckets'), { recursive: true });
    await mkdir(join(this.#dataDir, 'index', 'objects'), { recursive: true });
    await this.#load();
  }

  async #load(): Promise<void> {
    const indexDir = join(this.#dataDir, 'index');
    for (const file of await readdir(join(indexDir, 'buckets'))) {
      if (!file.endsWith('.json')) continue;
      const bucket = JSON.parse(await readFile(join(indexDir, 'buckets', file), 'utf8')) as BucketRecord;
      this.#buckets.set(bucket.name, bucket);
      this.#objects.set(bucket.name, new Map());
    }
    const referenced = new Set<string>();
    for (const [bucketName, objects] of this.#objects) {
      const dir = join(indexDir, 'objects', bucketName);
      const files = await readdir(dir).catch(() => [] as string[]);
      for (const file of files) {
        if (!file.endsWith('.json')) continue;
        const stored = JSON.parse(await readFile(join(dir, file), 'utf8')) as StoredObject;
        const { blob, ...fields } = stored;
        const blobPath = join(this.#dataDir, 'blobs', basename(blob));
        const present = await stat(blobPath).then(
          (s) => s.size === stored.size,
          () => false,
        );
        if (!present) {
          await unlink(join(dir, file)).catch(() => undefined);
          continue;
        }
        referenced.add(basename(blob));
        objects.set(stored.name, { ...fields, blobPath });
        this.#clock.observe(BigInt(stored.generation));
      }
    }
    for (const blob of await readdir(join(this.#dataDir, 'blobs'))) {
      if (!referenced.has(blob)) await unlink(join(this.#dataDir, 'blobs', blob)).catch(() => undefined);
    }
    for (const temp of await readdir(join(this.#dataDir, 'tmp'))) {
      await rm(join(this.#dataDir, 'tmp', temp), { force: true, recursive: true });
    }
  }

  /** Where the durable index keeps `bucket/name`: a digest, so any object name makes a file name. */
  #objectFile(bucket: string, name: string): string {
    const digest = createHash('sha256').update(name).digest('hex');
    return join(this.#dataDir, 'index', 'objects', bucket, `${digest}.json`);
  }

  #bucketFile(bucket: string): string {
    return join(this.#dataDir, 'index', 'buckets', `${bucket}.json`);
  }

  /**
   * Queues a write of `file` with whatever `current()` returns when the write runs (undefined
   * deletes the file). Writes to one file run one after another, and each writes the state of
   * that moment, so the last one leaves the latest state whatever order callers raced in.
   */
  #persist(file: string, current: () => unknown): Promise<void> {
    if (!this.#durable) return Promise.resolve();
    const previous = this.#writes.get(file) ?? Promise.resolve();
    const next = previous.then(async () => {
      const value = current();
      if (value === undefined) {
        await unlink(file).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw error;
        });
        return;
      }
      const temp = this.tempPath();
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(temp, JSON.stringify(value));
      await rename(temp, file);
    });
    const settled = next.catch(() => undefined);
    this.#writes.set(file, settled);
    void settled.then(() => {
      if (this.#writes.get(file) === settled) this.#writes.delete(file);
    });
    return next;
  }

  #persistObject(bucket: string, name: string): Promise<void> {
    return this.#persist(this.#objectFile(bucket, name), () => {
      const record = this.#objects.get(bucket)?.get(name);
      if (!record) return undefined;
      const { blobPath, ...fields } = record;
      const stored: StoredObject = { ...fields, blob: basename(blobPath) };
      return stored;
    });
  }

  #persistBucket(bucket: string): Promise<void> {
    return this.#persist(this.#bucketFile(bucket), () => this.#buckets.get(bucket));
  }

  /** A fresh path for an upload in progress; the caller owns it until commit or discard. */
  tempPath(): string {
    return join(this.#dataDir, 'tmp', randomUUID());
  }

  // ---- buckets -----------------------------------------------------------------------------

  async createBucket(
    name: string,
    projectId: string,
    fields: { location?: string; storageClass?: string; labels?: Record<string, string> } = {},
  ): Promise<BucketRecord> {
    if (!BUCKET_NAME.test(name)) throw invalid(`Invalid bucket name: '${name}'`);
    if (this.#buckets.has(name)) {
      throw new StorageHttpError(
        409,
        'conflict',
        'Your previous request to create the named bucket succeeded and you already own it.',
      );
    }
    const now = isoFromMicros(this.#clock.next());
    const bucket: BucketRecord = {
      name,
      projectId,
      timeCreated: now,
      updated: now,
      metageneration: 1,
      location: (fields.location ?? 'US').toUpperCase(),
      storageClass: fields.storageClass ?? 'STANDARD',
      ...(fields.labels ? { labels: fields.labels } : {}),
    };
    this.#buckets.set(name, bucket);
    this.#objects.set(name, new Map());
    await this.#persistBucket(name);
    return bucket;
  }

  getBucket(name: string): BucketRecord {
    const bucket = this.#buckets.get(name);
    if (!bucket) throw noSuchBucket();
    return bucket;
  }

  listBuckets(projectId: string | undefined, prefix = ''): BucketRecord[] {
    return [...this.#buckets.values()]
      .filter((b) => (projectId === undefined || b.projectId === projectId) && b.name.startsWith(prefix))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async patchBucket(
    name: string,
    fields: { labels?: Record<string, string | null>; storageClass?: string },
  ): Promise<BucketRecord> {
    const bucket = this.getBucket(name);
    if (fields.labels) bucket.labels = mergeMap(bucket.labels, fields.labels);
    if (fields.storageClass) bucket.storageClass = fields.storageClass;
    bucket.metageneration += 1;
    bucket.updated = isoFromMicros(this.#clock.next());
    await this.#persistBucket(name);
    return bucket;
  }

  /** Deletes an empty bucket; 409 `conflict` otherwise, as the real service does. */
  async deleteBucket(name: string): Promise<void> {
    this.getBucket(name);
    if ((this.#objects.get(name)?.size ?? 0) > 0) {
      throw new StorageHttpError(409, 'conflict', 'The bucket you tried to delete is not empty.');
    }
    this.#buckets.delete(name);
    this.#objects.delete(name);
    await this.#persistBucket(name);
  }

  // ---- objects -----------------------------------------------------------------------------

  #objectsOf(bucket: string): Map<string, ObjectRecord> {
    const objects = this.#objects.get(bucket);
    if (!objects) throw noSuchBucket();
    return objects;
  }

  /** The live object, optionally pinned to a generation (anything else is a 404). */
  get(bucket: string, name: string, generation?: string): ObjectRecord {
    const record = this.#objectsOf(bucket).get(name);
    if (!record || (generation !== undefined && generation !== record.generation))
      throw noSuchObject(bucket, name);
    return record;
  }

  /** The live object or undefined; 404 only for a missing bucket. */
  peek(bucket: string, name: string): ObjectRecord | undefined {
    return this.#objectsOf(bucket).get(name);
  }

  /**
   * Makes the bytes in `tempFile` the new live generation of `bucket/name`. The temp file is
   * moved into place first and the precondition check and index swap then happen in one
   * synchronous step, so two racing writers with `ifGenerationMatch=0` cannot both win.
   * The temp file is consumed (moved or deleted) whatever happens.
   */
  async commit(input: {
    bucket: string;
    name: string;
    tempFile: string;
    size: number;
    hashes: Partial<ObjectHashes> & { crc32c: string };
    meta: WritableObjectMeta;
    preconditions: Preconditions;
    componentCount?: number;
  }): Promise<ObjectRecord> {
    const blobPath = join(this.#dataDir, 'blobs', randomUUID());
    try {
      validateObjectName(input.name);
      this.#objectsOf(input.bucket);
      await rename(input.tempFile, blobPath);
    } catch (error) {
      await unlink(input.tempFile).catch(() => undefined);
      throw error;
    }
    let previous: ObjectRecord | undefined;
    let record: ObjectRecord;
    try {
      const objects = this.#objectsOf(input.bucket);
      previous = objects.get(input.name);
      checkPreconditions(previous, input.preconditions);
      const generation = this.#clock.next();
      const now = isoFromMicros(generation);
      record = {
        ...cleanMeta(input.meta),
        bucket: input.bucket,
        name: input.name,
        generation: generation.toString(),
        metageneration: 1,
        size: input.size,
        ...(input.hashes.md5Hash !== undefined ? { md5Hash: input.hashes.md5Hash } : {}),
        crc32c: input.hashes.crc32c,
        ...(input.componentCount !== undefined ? { componentCount: input.componentCount } : {}),
        timeCreated: now,
        updated: now,
        blobPath,
      };
      objects.set(input.name, record);
    } catch (error) {
      await unlink(blobPath).catch(() => undefined);
      throw error;
    }
    // Without versioning an overwrite permanently deletes the old generation, and the
    // real service reports that as `deleted` before the new object's `finalized`.
    if (previous) this.#onChange({ kind: 'deleted', object: previous });
    this.#onChange({ kind: 'finalized', object: record });
    await this.#persistObject(input.bucket, input.name);
    // The old blob goes only once the index no longer names it, so a crash leaves one or the other.
    if (previous) this.#unlinkBlob(previous);
    return record;
  }

  /** Copies the bytes of `source` into a temp file the caller then commits. */
  async cloneBlob(source: ObjectRecord): Promise<string> {
    const temp = this.tempPath();
    await copyFile(source.blobPath, temp);
    return temp;
  }

  /**
   * Applies a metadata patch (`null` removes a key or field); bumps the metageneration and
   * emits `metadataUpdated`.
   */
  async patch(
    bucket: string,
    name: string,
    changes: Record<string, unknown>,
    preconditions: Preconditions,
    replace = false,
  ): Promise<ObjectRecord> {
    const record = this.get(bucket, name);
    checkPreconditions(record, preconditions);
    const updated: ObjectRecord = { ...record };
    if (replace) {
      for (const field of WRITABLE_FIELDS) delete updated[field];
      delete updated.metadata;
    }
    for (const field of WRITABLE_FIELDS) {
      if (!(field in changes)) continue;
      const value = changes[field];
      if (value === null) delete updated[field];
      else if (typeof value === 'string') updated[field] = value;
    }
    if ('metadata' in changes) {
      const metadata = changes.metadata;
      if (metadata === null) delete updated.metadata;
      else if (typeof metadata === 'object') {
        const merged = mergeMap(replace ? undefined : updated.metadata, metadata as Record<string, unknown>);
        if (merged) updated.metadata = merged;
        else delete updated.metadata;
      }
    }
    updated.metageneration = record.metageneration + 1;
    updated.updated = isoFromMicros(this.#clock.next());
    this.#objectsOf(bucket).set(name, updated);
    this.#onChange({ kind: 'metadataUpdated', object: updated });
    await this.#persistObject(bucket, name);
    return updated;
  }

  /** Deletes the live object (or the named generation); emits `deleted`. */
  async delete(
    bucket: string,
    name: string,
    preconditions: Preconditions,
    generation?: string,
  ): Promise<ObjectRecord> {
    const record = this.get(bucket, name, generation);
    checkPreconditions(record, preconditions);
    this.#objectsOf(bucket).delete(name);
    this.#onChange({ kind: 'deleted', object: record });
    await this.#persistObject(bucket, name);
    this.#unlinkBlob(record);
    return record;
  }

  #unlinkBlob(record: ObjectRecord): void {
    // Readers that already opened the blob keep reading it: unlinking an open file is safe.
    unlink(record.blobPath).catch(() => undefined);
  }

  /**
   * One page of objects in lexicographic order. With a delimiter, names that continue past
   * it below `prefix` collapse into `prefixes`; items and prefixes together count against
   * `maxResults`, like the real service.
   */
  list(bucket: string, options: ListOptions): ListPage {
    const objects = this.#objectsOf(bucket);
    const prefix = options.prefix ?? '';
    const delimiter = options.delimiter || undefined;
    const maxResults = Math.max(1, Math.min(options.maxResults ?? DEFAULT_PAGE_SIZE, DEFAULT_PAGE_SIZE));
    const cursor = options.pageToken ? decodePageToken(options.pageToken) : undefined;
    const names = [...objects.keys()].filter((n) => n.startsWith(prefix)).sort(compareNames);
    const items: ObjectRecord[] = [];
    const prefixes: string[] = [];
    let lastPrefix: string | undefined;
    let emitted = 0;
    for (const name of names) {
      if (cursor) {
        if (compareNames(name, cursor.after) <= 0) continue;
        if (cursor.skipPrefix && name.startsWith(cursor.after)) continue;
      }
      if (options.startOffset !== undefined && compareNames(name, options.startOffset) < 0) continue;
      if (options.endOffset !== undefined && compareNames(name, options.endOffset) >= 0) continue;
      if (lastPrefix !== undefined && name.startsWith(lastPrefix)) continue;
      const cut = delimiter ? name.indexOf(delimiter, prefix.length) : -1;
      if (emitted === maxResults) {
        const last = lastEmitted(items, prefixes);
        return { items, prefixes, nextPageToken: encodePageToken(last.key, last.isPrefix) };
      }
      if (delimiter && cut >= 0) {
        lastPrefix = name.slice(0, cut + delimiter.length);
        prefixes.push(lastPrefix);
        if (options.includeTrailingDelimiter && name === lastPrefix) items.push(objects.get(name)!);
      } else {
        items.push(objects.get(name)!);
      }
      emitted += 1;
    }
    return { items, prefixes };
  }
}

/** Whichever of the last item and the last prefix sorts later is where the next page resumes. */
function lastEmitted(items: ObjectRecord[], prefixes: string[]): { key: string; isPrefix: boolean } {
  const item = items.at(-1)?.name;
  const prefix = prefixes.at(-1);
  if (prefix !== undefined && (item === undefined || compareNames(prefix, item) >= 0)) {
    return { key: prefix, isPrefix: true };
  }
  return { key: item ?? '', isPrefix: false };
}

/** Code-unit order; equals the service's UTF-8 byte order for names without astral characters. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const WRITABLE_FIELDS = [
  'contentType',
  'contentEncoding',
  'contentDisposition',
  'contentLanguage',
  'cacheControl',
  'customTime',
] as const;

/** Keeps only the writable fields of a client-supplied object resource, as strings. */
export function pickWritableMeta(source: Record<string, unknown>): WritableObjectMeta {
  const meta: WritableObjectMeta = {};
  for (const field of WRITABLE_FIELDS) {
    const value = source[field];
    if (typeof value === 'string') meta[field] = value;
  }
  if (typeof source.metadata === 'object' && source.metadata !== null) {
    const merged = mergeMap(undefined, source.metadata as Record<string, unknown>);
    if (merged) meta.metadata = merged;
  }
  return meta;
}

function cleanMeta(meta: WritableObjectMeta): WritableObjectMeta {
  return pickWritableMeta(meta as Record<string, unknown>);
}

/** Merges a patch into a string map: `null` deletes, other values are stringified. */
function mergeMap(
  base: Record<string, string> | undefined,
  patch: Record<string, unknown>,
): Record<string, string> | undefined {
  const merged: Record<string, string> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null || value === undefined) delete merged[key];
    else merged[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return Object.keys(merged).length > 0 ? merged : undefined;
}

function validateObjectName(name: string): void {
  if (name.length === 0) throw new StorageHttpError(400, 'required', 'Required');
  if (Buffer.byteLength(name) > 1024)
    throw invalid('The maximum object length is 1024 characters, but got a name with more.');
}
