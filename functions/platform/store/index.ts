import type { Firestore } from '@google-cloud/firestore';
import { type BatchItemsStore, createBatchItemsStore } from './batch-items.js';
import { type BatchRunsStore, createBatchRunsStore } from './batch-runs.js';
import { type CallbacksStore, createCallbacksStore } from './callbacks.js';
import { type CountersStore, createCountersStore } from './counters.js';
import { createItemsStore, type ItemsStore } from './items.js';
import { createJobsStore, type JobsStore } from './jobs.js';
import { createLedgerStore, type LedgerStore } from './ledger.js';
import { createPausesStore, type PausesStore } from './pauses.js';
import { createResponseCacheStore, type ResponseCacheStore } from './response-cache.js';

/** The narrow Firestore stores, one per collection the system keeps. */
export interface Stores {
  jobs: JobsStore;
  items: ItemsStore;
  counters: CountersStore;
  ledger: LedgerStore;
  pauses: PausesStore;
  /** The callback outbox (`callbacks/{jobId}`): written by the commit that ends a job. */
  callbacks: CallbacksStore;
  /** The response cache (`responseCache/{ownerHash_requestHash}`), see worker/response-cache.ts. */
  responseCache: ResponseCacheStore;
}

/** Builds every store on one database; `collectionPrefix` isolates tests that share an emulator. */
export function createStores(
  db: Firestore,
  options: {
    collectionPrefix?: string;
    /** How long jobs and items are kept (their `expireAt`, see RETENTION_DAYS); 30 days by default. */
    retentionMs?: number;
  } = {},
): Stores {
  const prefix = options.collectionPrefix ?? '';
  const counters = createCountersStore(db, prefix);
  return {
    jobs: createJobsStore(db, prefix, options.retentionMs),
    items: createItemsStore(db, counters, prefix, options.retentionMs),
    counters,
    ledger: createLedgerStore(db, prefix),
    pauses: createPausesStore(db, prefix),
    callbacks: createCallbacksStore(db, prefix),
    responseCache: createResponseCacheStore(db, prefix),
  };
}

/** The Batch API path's stores: its runs, and its items in bulk. */
export interface BatchApiStores {
  runs: BatchRunsStore;
  items: BatchItemsStore;
}

export function createBatchApiStores(
  db: Firestore,
  options: { collectionPrefix?: string } = {},
): BatchApiStores {
  const prefix = options.collectionPrefix ?? '';
  return { runs: createBatchRunsStore(db, prefix), items: createBatchItemsStore(db, prefix) };
}

export type {
  BatchItemsStore,
  BatchRunsStore,
  CallbacksStore,
  CountersStore,
  ItemsStore,
  JobsStore,
  LedgerStore,
  PausesStore,
  ResponseCacheStore,
};
