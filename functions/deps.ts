import { Firestore } from '@google-cloud/firestore';
import type { Storage } from '@google-cloud/storage';
import { dueWindowMs } from './core/due.js';
import { createLifecycle, type Lifecycle, type LifecycleDeps } from './lifecycle/lifecycle.js';
import { createPlanner, type Planner } from './lifecycle/plan.js';
import { type CallerResolver, createCallerResolver } from './platform/caller.js';
import { type Config, requireGeminiKey } from './platform/config.js';
import { type BatchApi, createBatchApi } from './platform/gemini/batch-api.js';
import { createGeminiClient, type GeminiClient, sdkFor } from './platform/gemini/client.js';
import { createVertexBatchApi } from './platform/gemini/vertex-batch.js';
import { createIdTokenVerifier } from './platform/id-token.js';
import { createLogger, type Logger } from './platform/logger.js';
import {
  createMediaFetcher,
  createMediaUploader,
  type MediaFetcher,
  mediaDeadlinesFor,
} from './platform/media/index.js';
import { createCallbackNotifier } from './platform/notify.js';
import { createObjectStore, createStorageClient, type ObjectStore } from './platform/object-store.js';
import {
  type BatchApiStores,
  createBatchApiStores,
  createStores,
  type Stores,
} from './platform/store/index.js';
import { createTaskAuthenticator, type TaskAuthenticator } from './platform/task-auth.js';
import { createTaskQueue, type TaskQueue } from './platform/task-queue.js';

/** Who signs ID tokens besides Google, and where their keys are (the local cloud's issuer). */
function identitySource(config: Config): {
  extraIssuers: string[];
  certsUrl?: string;
  acceptStrippedSignatures: boolean;
} {
  return {
    extraIssuers: config.identity.extraIssuers,
    ...(config.identity.certsUrl ? { certsUrl: config.identity.certsUrl } : {}),
    acceptStrippedSignatures: config.identity.acceptStripped,
  };
}

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
  /** Tick's check that Cloud Scheduler calls it (its OIDC token for the scheduler account). */
  schedulerAuth: TaskAuthenticator;
  /** Ingest's verified caller of a request (platform/caller.ts). */
  callers: CallerResolver;
  notify: LifecycleDeps['notify'];
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
  const storage = overrides.storage ?? createStorageClient(config.projectId);
  const workerUrl = config.workerUrl ?? 'http://127.0.0.1:8082/';
  const stores = overrides.stores ?? createStores(firestore, { retentionMs: config.retentionMs });
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
    overrides.notify ?? createCallbackNotifier({ masterSecret: config.callbackSecret, local: config.local });
  // The Gemini clients, and what is built on them, are made on first use: only the worker and the
  // tick call Gemini, and only they are given its key (config.ts `requireGeminiKey`).
  const geminiOptions = () => ({
    apiKey: requireGeminiKey(config),
    timeoutMs: config.gemini.timeoutMs,
    ...(config.gemini.baseUrl ? { baseUrl: config.gemini.baseUrl } : {}),
    ...(config.gemini.vertex ? { vertex: config.gemini.vertex } : {}),
  });
  const gemini = once(overrides.gemini, () => createGeminiClient(geminiOptions()));
  const batchApi = once(overrides.batchApi, () => {
    const { apiKey, baseUrl, vertex } = geminiOptions();
    // Vertex AI: batch prediction from the bucket (no Files API); the Developer API's Batch API otherwise.
    if (vertex) return createVertexBatchApi({ sdk: sdkFor(geminiOptions()), objects, bucket: config.bucket });
    return createBatchApi({ apiKey, ...(baseUrl ? { baseUrl } : {}) });
  });
  const planner = once(overrides.planner, () =>
    createPlanner({
      stores,
      tasks,
      counter: gemini(),
      quotas: config.quotas,
      logger,
      stallMs: config.reconcileAfterMs,
      dispatchDeadlineSeconds: config.dispatchDeadlineSeconds,
    }),
  );
  const media = once(overrides.media, () =>
    createMediaFetcher({
      storage,
      gcsAllowed: config.mediaGcsAllowed,
      gcsShared: config.mediaGcsShared,
      logger,
      ...mediaDeadlinesFor(config.leaseMs, Math.max(config.gemini.timeoutMs, config.gemini.flexTimeoutMs)),
      // Vertex AI has no Files API: media go inline there (gs:// media could go by URI: not yet).
      ...(config.gemini.vertex ? {} : { uploader: createMediaUploader(geminiOptions()) }),
    }),
  );
  return {
    config,
    logger,
    firestore,
    storage,
    stores,
    batchApiStores,
    get batchApi() {
      return batchApi();
    },
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
    get planner() {
      return planner();
    },
    get gemini() {
      return gemini();
    },
    get media() {
      return media();
    },
    taskAuth:
      overrides.taskAuth ??
      createTaskAuthenticator({
        service: 'Cloud Tasks',
        audience: workerUrl,
        ...(config.tasksServiceAccount ? { serviceAccount: config.tasksServiceAccount } : {}),
        acceptEmulatorTokens: Boolean(config.emulators.tasks),
        ...identitySource(config),
      }),
    schedulerAuth:
      overrides.schedulerAuth ??
      createTaskAuthenticator({
        service: 'Cloud Scheduler',
        // Without TICK_URL no token matches: tick refuses every call (fails closed).
        audience: config.tickUrl ?? '',
        ...(config.schedulerServiceAccount ? { serviceAccount: config.schedulerServiceAccount } : {}),
        acceptEmulatorTokens: false,
        ...identitySource(config),
      }),
    callers:
      overrides.callers ??
      createCallerResolver(
        createIdTokenVerifier({ audiences: config.identity.audiences, ...identitySource(config) }),
        config.admins,
      ),
    notify,
  };
}

/** `given` if there is one; else `make()` on the first call, and the same value after. */
function once<T>(given: T | undefined, make: () => T): () => T {
  let made: { value: T } | undefined = given === undefined ? undefined : { value: given };
  return () => {
    made ??= { value: make() };
    return made.value;
  };
}
