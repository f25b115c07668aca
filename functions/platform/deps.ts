import { Firestore } from '@google-cloud/firestore';
import { Storage } from '@google-cloud/storage';
import type { Config } from './config.js';
import { createFileUploader, createGeminiClient, type GeminiClient } from './gemini.js';
import { createJobStore, type JobStore } from './job-store.js';
import { createLogger, type Logger } from './logger.js';
import { createMediaFetcher, type MediaFetcher } from './media.js';
import { postCallback } from './notify.js';
import { createTaskAuthenticator, type TaskAuthenticator } from './task-auth.js';
import { createTaskQueue, type TaskQueue } from './task-queue.js';

/** Everything the handlers need, built once per function instance. */
export interface Deps {
  config: Config;
  logger: Logger;
  firestore: Firestore;
  storage: Storage;
  store: JobStore;
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
  return {
    config,
    logger,
    firestore,
    storage,
    store: overrides.store ?? createJobStore(firestore),
    tasks:
      overrides.tasks ??
      createTaskQueue({
        projectId: config.projectId,
        region: config.region,
        workerUrl,
        ...(config.tasksServiceAccount ? { serviceAccount: config.tasksServiceAccount } : {}),
        ...(config.emulators.tasks ? { emulatorHost: config.emulators.tasks } : {}),
      }),
    gemini:
      overrides.gemini ??
      createGeminiClient({
        apiKey: config.gemini.apiKey,
        timeoutMs: config.gemini.timeoutMs,
        ...(config.gemini.baseUrl ? { baseUrl: config.gemini.baseUrl } : {}),
      }),
    media:
      overrides.media ??
      createMediaFetcher({
        storage,
        uploader: createFileUploader({
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
    notify: overrides.notify ?? ((url, payload) => postCallback(url, payload)),
  };
}
