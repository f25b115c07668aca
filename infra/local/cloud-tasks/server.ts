import * as grpc from '@grpc/grpc-js';
import { loadCloudTasksService } from './protos.js';
import type { QueueStats } from './queue.js';
import { DEFAULT_SETTINGS, type EmulatorSettings, Registry } from './registry.js';
import { createCloudTasksHandlers } from './service.js';

export type { QueueStats } from './queue.js';
export type { EmulatorSettings } from './registry.js';

/** Options of {@link startCloudTasksEmulator}. */
export interface CloudTasksEmulatorOptions {
  /** Port to listen on; 0 or unset picks a free one. */
  port?: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Share (0…1) of attempts delivered twice. Default 0. */
  duplicateShare?: number;
  /** Seed of the fault PRNG. Default 1. */
  seed?: number;
  /** How long a task name stays reserved after its task is gone. Default 1 h. */
  dedupWindowMs?: number;
}

/** A running emulator. */
export interface CloudTasksEmulator {
  /** `HOST:PORT`, the value for CLOUD_TASKS_EMULATOR_HOST. */
  readonly host: string;
  readonly port: number;
  /** Stats of one queue (full name, or short id when unambiguous). */
  stats(queueName: string): QueueStats;
  /** Stats of every queue, keyed by full name. */
  stats(): Record<string, QueueStats>;
  /** Resolves when the queue is empty with nothing in flight; rejects after `timeoutMs`. */
  drain(queueName: string, timeoutMs?: number): Promise<void>;
  /** Changes fault knobs or the dedup window while running. */
  configure(partial: Partial<EmulatorSettings>): void;
  /** Stops dispatching, aborts in-flight requests and shuts the gRPC server down. */
  close(): Promise<void>;
}

/**
 * Starts the local Cloud Tasks: a gRPC server for google.cloud.tasks.v2.CloudTasks, built from
 * the protos of the installed `@google-cloud/tasks`, that dispatches HTTP tasks like the service.
 * Point the official client at it with `cloudTasksClientOptions(emulator.host)`.
 */
export async function startCloudTasksEmulator(
  options: CloudTasksEmulatorOptions = {},
): Promise<CloudTasksEmulator> {
  const bindHost = options.host ?? '127.0.0.1';
  const registry = new Registry({
    duplicateShare: options.duplicateShare ?? DEFAULT_SETTINGS.duplicateShare,
    seed: options.seed ?? DEFAULT_SETTINGS.seed,
    dedupWindowMs: options.dedupWindowMs ?? DEFAULT_SETTINGS.dedupWindowMs,
  });
  // Rejects out-of-range knobs (e.g. duplicateShare > 1) before anything listens.
  registry.configure({});
  const server = new grpc.Server();
  server.addService(loadCloudTasksService(), createCloudTasksHandlers(registry));
  const address = bindHost.includes(':')
    ? `[${bindHost}]:${options.port ?? 0}`
    : `${bindHost}:${options.port ?? 0}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
  const host = bindHost.includes(':') ? `[${bindHost}]:${port}` : `${bindHost}:${port}`;
  let closing: Promise<void> | undefined;

  function stats(queueName: string): QueueStats;
  function stats(): Record<string, QueueStats>;
  function stats(queueName?: string): QueueStats | Record<string, QueueStats> {
    return registry.stats(queueName);
  }

  return {
    host,
    port,
    stats,
    drain: (queueName, timeoutMs = 30_000) => registry.drain(queueName, timeoutMs),
    configure: (partial) => registry.configure(partial),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        registry.close();
        // Give open calls a moment to finish, then cut them.
        const force = setTimeout(() => server.forceShutdown(), 1000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      return closing;
    },
  };
}
