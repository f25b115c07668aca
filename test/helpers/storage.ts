import { Storage } from '@google-cloud/storage';
import { vi } from 'vitest';

/**
 * A client aimed at `url` through `apiEndpoint` only. The client lets STORAGE_EMULATOR_HOST
 * override the JSON API base URL (but not the upload URL), and the suite's local cloud sets
 * that variable for its own emulator, so it is unset while this client is built.
 */
export function storageClientFor(url: string, projectId: string): Storage {
  vi.stubEnv('STORAGE_EMULATOR_HOST', undefined);
  try {
    return new Storage({ projectId, apiEndpoint: url });
  } finally {
    vi.unstubAllEnvs();
  }
}
