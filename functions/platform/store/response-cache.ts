import { type Firestore, Timestamp } from '@google-cloud/firestore';
import type { Usage } from '../../core/jobs.js';

/**
 * `responseCache/{id}`: one document per (owner, request) hash (worker/response-cache.ts makes the
 * id), holding the answer a call paid for: the response inline when it fits, else the name of the
 * bucket object its item's answer was stored in (big answers stay in the bucket, never copied).
 * `expireAt` is the cache's TTL: a read past it is a miss (Firestore's TTL policy, firestore.tf,
 * deletes the document some time later, typically within a day), so the store checks it itself.
 */
export interface CacheEntry {
  /** The response as JSON, when it fits a document; else `responseObject`. */
  responseJson?: string;
  /** The bucket object holding the response (`answers/{jobId}/{itemId}.json`). */
  responseObject?: string;
  /** What the answer counted and cost when it was bought. */
  usage: Usage;
  costUsd: number;
  /** The job and item whose call paid for it. */
  jobId: string;
  itemId: string;
  /** Until when it is served (epoch ms). */
  expireAtMs: number;
}

export interface ResponseCacheStore {
  /** The entry stored under `id`, unless there is none or it has expired by `nowMs`: one read. */
  get(id: string, nowMs: number): Promise<CacheEntry | undefined>;
  /** Writes the entry (a newer answer to the same request replaces an older one). */
  put(id: string, entry: CacheEntry): Promise<void>;
}

export function createResponseCacheStore(db: Firestore, prefix = ''): ResponseCacheStore {
  const entries = db.collection(`${prefix}responseCache`);
  return {
    async get(id, nowMs) {
      const snap = await entries.doc(id).get();
      const d = snap.data();
      if (!d) return undefined;
      const expireAtMs = d.expireAt instanceof Timestamp ? d.expireAt.toMillis() : 0;
      if (expireAtMs <= nowMs) return undefined;
      if (typeof d.responseJson !== 'string' && typeof d.responseObject !== 'string') return undefined;
      return {
        ...(typeof d.responseJson === 'string' ? { responseJson: d.responseJson } : {}),
        ...(typeof d.responseObject === 'string' ? { responseObject: d.responseObject } : {}),
        usage: d.usage ?? { promptTokens: 0, outputTokens: 0 },
        costUsd: typeof d.costUsd === 'number' ? d.costUsd : 0,
        jobId: d.jobId,
        itemId: d.itemId,
        expireAtMs,
      };
    },
    async put(id, entry) {
      const { expireAtMs, ...rest } = entry;
      await entries.doc(id).set({ ...rest, expireAt: Timestamp.fromMillis(expireAtMs) });
    },
  };
}
