import type { Storage } from '@google-cloud/storage';

/**
 * The project's bucket, for what does not fit in Firestore. Narrow: callers store and read JSON
 * documents by object name.
 */
export interface ObjectStore {
  /** Writes `value` as JSON to `name` (overwriting: the name says what it holds, the value is the same). */
  putJson(name: string, value: unknown): Promise<void>;
  getJson(name: string): Promise<unknown>;
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
  };
}

/** Where an item's response lives when it is too big for the item's document. */
export function answerObjectName(jobId: string, itemId: string): string {
  return `answers/${jobId}/${itemId}.json`;
}
