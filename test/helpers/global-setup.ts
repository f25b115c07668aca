import type { TestProject } from 'vitest/node';
import { startFirestoreEmulator } from '../../infra/local/firestore.js';

declare module 'vitest' {
  export interface ProvidedContext {
    firestoreEmulatorHost: string;
  }
}

/**
 * Starts each emulator once per test run; tests isolate themselves by project id or prefix.
 * An already running emulator (FIRESTORE_EMULATOR_HOST set) is reused.
 */
export default async function setup(project: TestProject) {
  const existing = process.env.FIRESTORE_EMULATOR_HOST;
  const firestore = existing ? undefined : await startFirestoreEmulator();
  const host = existing ?? firestore!.host;
  process.env.FIRESTORE_EMULATOR_HOST = host;
  project.provide('firestoreEmulatorHost', host);
  return async () => {
    await firestore?.stop();
  };
}
