import { Firestore } from '@google-cloud/firestore';
import { Storage } from '@google-cloud/storage';
import { dueWindowMs } from './core/due.js';
import { createLifecycle, type Lifecycle } from './lifecycle/lifecycle.js';
import { createPlanner, type Planner } from './lifecycle/plan.js';
import type { Config } from './platform/config.js';
import { type BatchApi, createBatchApi } from './platform/gemini/batch-api.js';
import { createGeminiClient, type GeminiClient } from './platform/gemini/client.js';
import { createLogger, type Logger } from './platform/logger.js';
import {
  createMediaFetcher,
  createMediaUploader,
  type MediaFetcher,
  mediaDeadlinesFor,
} from './platform/media/index.js';
import { postCallback } from './platform/notify.js';
import { createObjectStore, type ObjectStore } from './platform/object-store.js';
import {
  type BatchApiStores,
  createBatchApiStores,
  createStores,
  type Stores,
} from './platform/store/index.js';
import { createTaskAuthenticator, type TaskAuthenticator } from './platform/task-auth.js';
import { createTaskQueue, type TaskQueue } from './platform/task-queue.js';

/** Everything the handlers need, built once per function instance. */
export interface Deps {
  config: Config;
  logger: Logger;
  firestore: Firestore;
  storage: Storage;
  stores: Stores;
  batchApiStores: BatchApiStores;
  batchApi: BatchApi;
  objects: ObjectStore;
  lifecycle: Lifecycle;
  planner: Planner;
  tasks: TaskQueue;
  gemini: GeminiClient;
  media: MediaFetcher;
  taskAuth: TaskAuthenticator;
  notify: (url: string, payload: unknown) => Promise<void>;
}

/**
 * Builds the real clients from the config. The official clients find the emulators through their
 * standard variables (`FIRESTORE_EMULATOR_HOST`, `STORAGE_EMULATOR_HOST`); Cloud Tasks has none, so
 * its client is pointed at `CLOUD_TASKS_EMULATOR_HOST` here.
 */
export function createDeps(config: Config, overrides: Partial<Deps> = {}): Deps {
  const logger = overrides.logger ?? createLogger({ level: config.logLevel });
  const firestore =
    overrides.firestore ?? new Firestore({ projectId: config.projectId, ignoreUndefinedProperties: true });
  const storage = overrides.storage ?? new Storage({ projectId: config.projectId });
  const workerUrl = config.workerUrl ?? 'http://127.0.0.1:8082/';
  const stores = overrides.stores ?? createStores(firestore);
  const batchApiStores = overrides.batchApiStores ?? createBatchApiStores(firestore);
  const objects = overrides.objects ?? createObjectStore(storage, config.bucket);
  const tasks =
    overrides.tasks ??
    createTaskQueue({
      projectId: config.projectId,
      region: config.region,
      workerUrl,
      dispatchDeadlineSeconds: config.dispatchDeadlineSeconds,
      ...(config.tasksServiceAccount ? { serviceAccount: config.tasksServiceAccount } : {}),
      ...(config.emulators.tasks ? { emulatorHost: config.emulators.tasks } : {}),
    });
  const notify =
    overrides.notify ??
    ((url: string, payload: unknown) =>
      postCallback(url, payload, { secret: config.callbackSecret, local: config.local }));
  const gemini =
    overrides.gemini ??
    createGeminiClient({
      apiKey: config.gemini.apiKey,
      timeoutMs: config.gemini.timeoutMs,
      ...(config.gemini.baseUrl ? { baseUrl: config.gemini.baseUrl } : {}),
    });
  return {
    config,
    logger,
    firestore,
    storage,
    stores,
    batchApiStores,
    batchApi:
      overrides.batchApi ??
      createBatchApi({
        apiKey: config.gemini.apiKey,
        ...(config.gemini.baseUrl ? { baseUrl: config.gemini.baseUrl } : {}),
      }),
    objects,
    tasks,
    lifecycle:
      overrides.lifecycle ??
      createLifecycle({
        stores,
        batch: batchApiStores,
        tasks,
        objects,
        logger,
        notify,
        callbackPolicy: { retryForMs: config.callbackRetryMs },
        stallMs: config.reconcileAfterMs,
        dueWindowMs: dueWindowMs(config.quotas.queue, config.dispatchDeadlineSeconds),
      }),
    planner:
      overrides.planner ??
      createPlanner({
        stores,
        tasks,
        counter: gemini,
        quotas: config.quotas,
        logger,
        stallMs: config.reconcileAfterMs,
        dispatchDeadlineSeconds: config.dispatchDeadlineSeconds,
      }),
    gemini,
    media:
      overrides.media ??
      createMediaFetcher({
        storage,
        gcsAllowed: config.mediaGcsAllowed,
        logger,
        ...mediaDeadlinesFor(config.leaseMs, Math.max(config.gemini.timeoutMs, config.gemini.flexTimeoutMs)),
        uploader: createMediaUploader({
          apiKey: config.gemini.apiKey,
          timeoutMs: config.gemini.timeoutMs,
          ...(config.gemini.baseUrl ? { baseUrl: config.gemini.baseUrl } : {}),
        }),
      }),
    taskAuth:
      overrides.taskAuth ??
      createTaskAuthenticator({
        audience: workerUrl,
        ...(config.tasksServiceAccount ? { serviceAccount: config.tasksServiceAccount } : {}),
        acceptEmulatorTokens: Boolean(config.emulators.tasks),
      }),
    notify,
  };
}
