import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DELETED,
  type DeliveryRecord,
  type DeliveryStats,
  Eventarc,
  type EventDeliveryOptions,
  type EventRetryOptions,
  FINALIZED,
  METADATA_UPDATED,
  type StorageEventType,
  type Subscription,
} from './eventarc.js';
import { createCrc32cTables } from './hashes.js';
import { createStorageUsage, type StorageUsage } from './operations.js';
import { resolveSettings, type StorageProfile, type StorageSettings } from './profiles.js';
import { objectResource } from './resources.js';
import { type RouteContext, route } from './routes.js';
import { ObjectStore, type StoreChange } from './store.js';
import type { UploadSession } from './uploads.js';

export type {
  DeliveryRecord,
  DeliveryStats,
  EventDeliveryOptions,
  EventRetryOptions,
  StorageEventType,
  Subscription,
} from './eventarc.js';
export { RESUMABLE_GRANULARITY, type StorageProfile, type StorageSettings } from './profiles.js';

const EVENT_TYPES: Record<StoreChange['kind'], StorageEventType> = {
  finalized: FINALIZED,
  deleted: DELETED,
  metadataUpdated: METADATA_UPDATED,
};

/**
 * Options of {@link startStorageEmulator}; every field has a local default. `profile` picks the
 * defaults of the knobs below it (see README.md); a knob given here wins over its profile.
 */
export interface StorageEmulatorOptions {
  /** `ideal` (default): today's kind emulator. `strict`: the real services' behaviours. */
  profile?: StorageProfile;
  /**
   * A resumable request that does not finish its upload persists only whole multiples of this
   * many bytes; `Range` on the 308 says how many. ideal 0 (every byte), strict 262,144 (256 KiB).
   */
  uploadGranularity?: number;
  /**
   * Buckets, objects, metadata and generations kept on disk in `dataDir`, so a new emulator on
   * the same `dataDir` serves them. ideal false, strict true.
   */
  durable?: boolean;
  /** Duplicates, delay, reordering, OIDC and time scale of event delivery. */
  events?: EventDeliveryOptions;
  /** Port to listen on; 0 or absent picks a free one. */
  port?: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Where blobs live. Absent: a fresh temp folder, removed again by `close()`. */
  dataDir?: string;
  /** Project new buckets belong to when the request names none. Default `local-project`. */
  projectId?: string;
  /** Eventarc triggers to deliver object events to from the start. */
  subscriptions?: Subscription[];
  /** Backoff and limits of event delivery (scaled by `events.timeScale`). */
  eventRetry?: EventRetryOptions;
  /** Called with unexpected (500) errors. Default: one JSON line on stderr. */
  onError?: (error: unknown) => void;
}

/** A running emulator. */
export interface StorageEmulator {
  /** `http://host:port`: the value for `STORAGE_EMULATOR_HOST` or the client's `apiEndpoint`. */
  url: string;
  port: number;
  dataDir: string;
  /** The knobs in force, profile defaults and overrides resolved. */
  settings: StorageSettings;
  /** Adds an Eventarc trigger. */
  subscribe(subscription: Subscription): void;
  /** Delivery counters (delivered, failed, attempts, pending). */
  stats(): DeliveryStats;
  /** Recent deliveries with their state, oldest first. */
  events(): DeliveryRecord[];
  /** Resolves when no event delivery is in flight or waiting to be retried. */
  idle(): Promise<void>;
  /**
   * Operations served since start, by JSON API method and billing class (./operations.ts); also
   * `GET /_emulator/usage`.
   */
  usage(): StorageUsage;
  /** Stops listening and delivering; removes `dataDir` if the emulator created it. */
  close(): Promise<void>;
}

function defaultOnError(error: unknown): void {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(
    `${JSON.stringify({ severity: 'ERROR', event: 'storage_emulator_error', message })}\n`,
  );
}

/**
 * Starts the Cloud Storage emulator: the JSON API subset `@google-cloud/storage` uses,
 * objects on disk, and the Eventarc stand-in for object events.
 */
export async function startStorageEmulator(options: StorageEmulatorOptions = {}): Promise<StorageEmulator> {
  const host = options.host ?? '127.0.0.1';
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'storage-emulator-')));
  const projectId = options.projectId ?? 'local-project';
  const settings = resolveSettings(options, projectId);
  const eventarc = new Eventarc(options.subscriptions ?? [], {
    retry: settings.eventRetry,
    delivery: settings.events,
  });
  const sessions = new Map<string, UploadSession>();
  const context: { baseUrl: string } = { baseUrl: '' };
  const store = new ObjectStore(
    dataDir,
    (change) => {
      const time = change.kind === 'deleted' ? new Date().toISOString() : change.object.updated;
      eventarc.publish(
        EVENT_TYPES[change.kind],
        change.object.bucket,
        change.object.name,
        time,
        objectResource(change.object, context.baseUrl),
      );
    },
    { durable: settings.durable },
  );
  await store.init();

  const ctx: RouteContext = {
    store,
    tables: createCrc32cTables(),
    sessions,
    eventarc,
    uploadGranularity: settings.uploadGranularity,
    projectId,
    onError: options.onError ?? defaultOnError,
    get baseUrl() {
      return context.baseUrl;
    },
  };
  const operations = createStorageUsage();
  const server = createServer((req, res) => {
    if (req.url === '/_emulator/usage') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(operations.usage()));
      return;
    }
    operations.count(req.method ?? 'GET', req.url ?? '/');
    void route(req, res, ctx);
  });
  // Uploads of gigabytes run for minutes; Node's default request timeout would cut them off.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  await listen(server, options.port ?? 0, host);
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  context.baseUrl = url;

  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    dataDir,
    settings,
    subscribe: (subscription) => eventarc.subscribe(subscription),
    stats: () => eventarc.stats(),
    events: () => eventarc.events(),
    idle: () => eventarc.idle(),
    usage: () => operations.usage(),
    close: () => {
      closed ??= (async () => {
        eventarc.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
      })();
      return closed;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
