import { type File, Storage } from '@google-cloud/storage';
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

/** Polls until the object exists, then downloads it whole (tests read small result files). */
export async function waitForObject(file: File, timeoutMs: number): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [exists] = await file.exists();
    if (exists) return (await file.download())[0];
    if (Date.now() > deadline) throw new Error(`${file.name} did not appear in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
