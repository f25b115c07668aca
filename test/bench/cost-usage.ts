import type { Stack } from '../../infra/local/stack.js';
import type { StorageUsage } from '../../infra/local/storage/operations.js';
import type { FirestoreMeter } from '../../infra/local/usage/firestore-meter.js';
import type { FirestoreUsage } from '../../infra/local/usage/firestore-tally.js';
import {
  type FunctionsUsage,
  readFunctionsUsage,
  usageSince,
} from '../../infra/local/usage/functions-meter.js';
import type { CloudUsage } from '../../infra/local/usage/price.js';

/**
 * One reading of every meter of the local cloud (cumulative counts): Cloud Tasks (the emulator's
 * `usage()`), the functions host (`GET /usage` on FANOUT_HOST_USAGE_PORT), Firestore (the counting
 * proxy) and Cloud Storage (`GET /_emulator/usage`). Two readings give a run's {@link CloudUsage}.
 */
export interface MeterReading {
  tasks: { apiCalls: Record<string, number>; attempts: number };
  functions: FunctionsUsage;
  firestore: FirestoreUsage;
  storage: StorageUsage;
}

export async function readMeters(
  stack: Stack,
  firestore: FirestoreMeter,
  usagePort: number,
): Promise<MeterReading> {
  const storage = (await (await fetch(`${stack.storage.url}/_emulator/usage`)).json()) as StorageUsage;
  return {
    tasks: stack.tasks.usage(),
    functions: await readFunctionsUsage(usagePort),
    firestore: firestore.usage(),
    storage,
  };
}

const diffMap = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
  Object.fromEntries(
    Object.entries(a)
      .map(([k, v]): [string, number] => [k, v - (b[k] ?? 0)])
      .filter(([, v]) => v !== 0),
  );

/** What happened between two readings, in the shape the pricing takes (plus detail for the report). */
export function usageBetween(after: MeterReading, before: MeterReading) {
  const apiCalls = diffMap(after.tasks.apiCalls, before.tasks.apiCalls);
  const attempts = after.tasks.attempts - before.tasks.attempts;
  const fns = usageSince(after.functions, before.functions);
  const { idle, ...perFunction } = fns;
  const usage: CloudUsage = {
    tasks: {
      operations: attempts + Object.values(apiCalls).reduce((a, n) => a + n, 0),
      byKind: { deliveryAttempts: attempts, ...apiCalls },
    },
    functions: Object.fromEntries(
      Object.entries(perFunction)
        .filter(([, m]) => m.invocations > 0 || m.billedMs > 0)
        .map(([name, m]) => [
          name,
          { invocations: m.invocations, billedSeconds: m.billedMs / 1000, cpuSeconds: m.cpuMs / 1000 },
        ]),
    ),
    firestore: {
      reads: after.firestore.reads - before.firestore.reads,
      writes: after.firestore.writes - before.firestore.writes,
      deletes: after.firestore.deletes - before.firestore.deletes,
    },
    storage: {
      classA: after.storage.classA - before.storage.classA,
      classB: after.storage.classB - before.storage.classB,
      free: after.storage.free - before.storage.free,
    },
  };
  return {
    usage,
    detail: {
      firestoreCalls: diffMap(after.firestore.calls, before.firestore.calls),
      firestoreReadsByRpc: diffMap(after.firestore.readsByRpc, before.firestore.readsByRpc),
      storageByMethod: diffMap(after.storage.byMethod, before.storage.byMethod),
      idleCpuSeconds: (idle?.cpuMs ?? 0) / 1000,
    },
  };
}
