import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { IdempotencyStrategy, Storage } from '@google-cloud/storage';

/** An object's bytes to read: a generation (an object overwritten since is not read), a byte range. */
export interface ReadOptions {
  generation?: string;
  /** Bytes [start, end] (both included), as Cloud Storage ranges go. */
  start?: number;
  end?: number;
}

/**
 * The project's bucket, for what does not fit in Firestore and for the files users drop and read.
 * Narrow: callers store and read JSON documents and stream text objects by name.
 */
export interface ObjectStore {
  /** Writes `value` as JSON to `name` (overwriting: the name says what it holds, the value is the same). */
  putJson(name: string, value: unknown): Promise<void>;
  getJson(name: string): Promise<unknown>;
  /** Streams an object's bytes (never the whole object in memory). */
  read(name: string, options?: ReadOptions): AsyncIterable<Uint8Array>;
  /**
   * Writes `chunks` to `name` as a streamed (resumable) upload, gzipped when `gzip`; the object
   * appears whole when the last chunk is written, never half.
   */
  writeStream(
    name: string,
    chunks: Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
    options: { contentType: string; gzip?: boolean },
  ): Promise<void>;
  /** Deletes an object; one already gone is not an error. */
  delete(name: string): Promise<void>;
}

/**
 * The functions' Cloud Storage client. Every write they make may be sent twice: `putJson`'s names say
 * what they hold (a retry writes the same bytes), resumable uploads resume, deletes ignore a missing
 * object. So the client retries each on what the library counts as transient (408, 429, 5xx, a
 * connection reset or cut: ECONNRESET, EPIPE), where its default retries a write only with a
 * generation precondition: one reset connection would otherwise lose a paid answer parked under its
 * name (a keep-alive connection the server closed as the write began cut a CI run's upload).
 */
export function createStorageClient(projectId: string): Storage {
  return new Storage({ projectId, retryOptions: { idempotencyStrategy: IdempotencyStrategy.RetryAlways } });
}

export function createObjectStore(storage: Storage, bucket: string): ObjectStore {
  const b = storage.bucket(bucket);
  return {
    async putJson(name, value) {
      await b.file(name).save(JSON.stringify(value), { contentType: 'application/json', resumable: false });
    },
    async getJson(name) {
      const [bytes] = await b.file(name).download();
      return JSON.parse(bytes.toString('utf8'));
    },
    read(name, options = {}) {
      const file = b.file(name, options.generation ? { generation: options.generation } : {});
      // Bytes as stored: a gzip file is gunzipped by the reader (functions/platform/jsonl.ts).
      return file.createReadStream({
        decompress: false,
        validation: options.start === undefined && options.end === undefined ? 'crc32c' : false,
        ...(options.start !== undefined ? { start: options.start } : {}),
        ...(options.end !== undefined ? { end: options.end } : {}),
      });
    },
    async writeStream(name, chunks, options) {
      const sink = b.file(name).createWriteStream({ contentType: options.contentType, resumable: true });
      const source = Readable.from(chunks);
      await (options.gzip ? pipeline(source, createGzip(), sink) : pipeline(source, sink));
    },
    async delete(name) {
      await b.file(name).delete({ ignoreNotFound: true });
    },
  };
}

/** Where an item's response lives when it is too big for the item's document. */
export function answerObjectName(jobId: string, itemId: string): string {
  return `answers/${jobId}/${itemId}.json`;
}

/**
 * Where a paid answer waits when its outcome could not be written within its delivery's lease: its
 * response (or the name of its big-response object), usage and cost, for the next delivery to record.
 */
export function parkedAnswerName(jobId: string, itemId: string): string {
  return `answers/${jobId}/${itemId}.parked.json`;
}

/**
 * Where an item's first answer waits for its repair call when it did not match its schema
 * (`lifecycle/repair-drafts.ts`).
 */
export function repairDraftName(jobId: string, itemId: string): string {
  return `answers/${jobId}/${itemId}.draft.json`;
}

/** Whether a read failed because the object does not exist (Cloud Storage's 404). */
export function isMissingObject(err: unknown): boolean {
  return (err as { code?: number }).code === 404;
}
