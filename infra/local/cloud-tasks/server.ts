import * as grpc from '@grpc/grpc-js';
import type { HistoryLimits } from './history.js';
import type { BehaviourOverrides, CloudTasksProfile } from './profile.js';
import { loadCloudTasksService } from './protos.js';
import type { QueueStats } from './queue.js';
import {
  DEFAULT_SETTINGS,
  type EmulatorSettings,
  nextSettings,
  Registry,
  type SettingsChange,
} from './registry.js';
import { createCloudTasksHandlers } from './service.js';

export type { HistoryLimits } from './history.js';
export type {
  BehaviourOverrides,
  Behaviours,
  BurstRule,
  CloudTasksProfile,
  CreateRamp,
  DispatchRamp,
  SystemThrottle,
} from './profile.js';
export type { QueueStats } from './queue.js';
export type { EmulatorSettings, SettingsChange } from './registry.js';

/**
 * Options of {@link startCloudTasksEmulator}. `profile` picks every upstream behaviour at once
 * (`'ideal'`, the default, or `'strict'`); the behaviour fields override single ones on top of it
 * (an object merges into the profile's settings for that behaviour, `false` turns it off). See
 * README.md for what each does upstream and here.
 */
export interface CloudTasksEmulatorOptions extends BehaviourOverrides {
  /** Port to listen on; 0 or unset picks a free one. */
  port?: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Share (0…1) of attempts delivered twice. Default 0. */
  duplicateShare?: number;
  /** Seed of the PRNG behind faults, jitter and reordering. Default 1. */
  seed?: number;
  /** How long a task name stays reserved after its task is gone. Default 1 h. */
  dedupWindowMs?: number;
  /** `'ideal'` (default): the queue's settings and nothing more. `'strict'`: every documented unkindness. */
  profile?: CloudTasksProfile;
  /** How much dispatch and attempt history the stats keep (memory stays bounded by it). */
  history?: Partial<HistoryLimits>;
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
  /**
   * Changes knobs while running: faults, dedup window, history limits, the profile (its preset
   * replaces every behaviour) and single behaviours.
   */
  configure(change: SettingsChange): void;
  /** The settings in force, behaviours resolved. */
  settings(): EmulatorSettings;
  /**
   * What Cloud Tasks bills for (cloud.google.com/tasks/pricing: a billable operation is an API call
   * or a push delivery attempt), counted since start: API calls by RPC name (each at least one
   * operation; ListTasks is billed per task it returns, counted here as one) and delivery attempts
   * over every queue (duplicates the emulator injects included).
   */
  usage(): { apiCalls: Record<string, number>; attempts: number };
  /** Stops dispatching, aborts in-flight requests and shuts the gRPC server down. */
  close(): Promise<void>;
}

/** Counts every call of each RPC of `handlers` into `calls`. */
function countingCalls(
  handlers: grpc.UntypedServiceImplementation,
  calls: Record<string, number>,
): grpc.UntypedServiceImplementation {
  return Object.fromEntries(
    Object.entries(handlers).map(([name, handler]) => [
      name,
      (call: unknown, callback: unknown) => {
        calls[name] = (calls[name] ?? 0) + 1;
        return (handler as (c: unknown, cb: unknown) => void)(call, callback);
      },
    ]),
  ) as grpc.UntypedServiceImplementation;
}

/**
 * Starts the local Cloud Tasks: a gRPC server for google.cloud.tasks.v2.CloudTasks, built from
 * the protos of the installed `@google-cloud/tasks`, that dispatches HTTP tasks like the service.
 * Point the official client at it with `cloudTasksClientOptions(emulator.host)`.
 */
export async function startCloudTasksEmulator(
  options: CloudTasksEmulatorOptions = {},
): Promise<CloudTasksEmulator> {
  const { port: wantedPort, host: wantedHost, ...change } = options;
  const bindHost = wantedHost ?? '127.0.0.1';
  // Rejects out-of-range knobs (e.g. duplicateShare > 1) before anything listens.
  const registry = new Registry(nextSettings(DEFAULT_SETTINGS, change));
  const server = new grpc.Server();
  const apiCalls: Record<string, number> = {};
  server.addService(loadCloudTasksService(), countingCalls(createCloudTasksHandlers(registry), apiCalls));
  const address = bindHost.includes(':')
    ? `[${bindHost}]:${wantedPort ?? 0}`
    : `${bindHost}:${wantedPort ?? 0}`;
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
    settings: () => registry.currentSettings(),
    usage: () => ({
      apiCalls: { ...apiCalls },
      attempts: Object.values(registry.stats()).reduce((sum, q) => sum + q.dispatches + q.duplicates, 0),
    }),
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
