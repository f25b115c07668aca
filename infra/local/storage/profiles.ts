import type { EventDeliveryOptions, EventRetryOptions } from './eventarc.js';

/**
 * `ideal`: the kind emulator the conformance basics run against (every byte of a chunk kept,
 * the index in memory, each event once, at once, in order, unauthenticated, short retries).
 * `strict`: what the real services do (see README.md), for the e2e suite.
 */
export type StorageProfile = 'ideal' | 'strict';

/** Every knob of the emulator, resolved from a profile and the caller's overrides. */
export interface StorageSettings {
  profile: StorageProfile;
  /** Non-final resumable chunks persist only whole multiples of this (0 = every byte). */
  uploadGranularity: number;
  /** Index (buckets, objects, metadata, generations) on disk, so a restart serves it again. */
  durable: boolean;
  eventRetry: Required<EventRetryOptions>;
  events: Required<EventDeliveryOptions>;
}

/** The real service's resumable-upload unit: 256 KiB. */
export const RESUMABLE_GRANULARITY = 256 * 1024;

const HOUR = 60 * 60_000;

const IDEAL: Omit<StorageSettings, 'events'> & {
  events: Omit<Required<EventDeliveryOptions>, 'serviceAccountEmail'>;
} = {
  profile: 'ideal',
  uploadGranularity: 0,
  durable: false,
  eventRetry: {
    maxAttempts: 8,
    initialBackoffMs: 1000,
    maxBackoffMs: 60_000,
    multiplier: 2,
    maxDurationMs: 10 * 60_000,
    timeoutMs: 60_000,
  },
  events: {
    duplicateShare: 0,
    delayMs: { min: 0, max: 0 },
    reorder: false,
    oidc: false,
    timeScale: 1,
    seed: 1,
  },
};

const STRICT: typeof IDEAL = {
  profile: 'strict',
  uploadGranularity: RESUMABLE_GRANULARITY,
  durable: true,
  // Pub/Sub push, which carries Eventarc: 10 s doubling to 600 s, no attempt cap, 24 h retention.
  eventRetry: {
    maxAttempts: Number.POSITIVE_INFINITY,
    initialBackoffMs: 10_000,
    maxBackoffMs: 600_000,
    multiplier: 2,
    maxDurationMs: 24 * HOUR,
    timeoutMs: 60_000,
  },
  // Duplicates are rare upstream; one in ten here so a short run meets some.
  events: {
    duplicateShare: 0.1,
    delayMs: { min: 200, max: 2000 },
    reorder: true,
    oidc: true,
    timeScale: 1,
    seed: 1,
  },
};

/** What a caller may override on top of a profile. */
export interface StorageOverrides {
  profile?: StorageProfile;
  uploadGranularity?: number;
  durable?: boolean;
  eventRetry?: EventRetryOptions;
  events?: EventDeliveryOptions;
}

/** The profile's defaults (ideal unless named), with each given knob in place of its default. */
export function resolveSettings(overrides: StorageOverrides, projectId: string): StorageSettings {
  const profile = overrides.profile ?? 'ideal';
  if (profile !== 'ideal' && profile !== 'strict')
    throw new Error(`unknown storage profile ${String(profile)}`);
  const base = profile === 'strict' ? STRICT : IDEAL;
  const granularity = overrides.uploadGranularity ?? base.uploadGranularity;
  if (!(Number.isInteger(granularity) && granularity >= 0)) {
    throw new Error(`uploadGranularity must be a whole number of bytes >= 0, got ${granularity}`);
  }
  return {
    profile,
    uploadGranularity: granularity,
    durable: overrides.durable ?? base.durable,
    eventRetry: { ...base.eventRetry, ...defined(overrides.eventRetry) },
    events: {
      serviceAccountEmail: `eventarc-trigger@${projectId}.iam.gserviceaccount.com`,
      ...base.events,
      ...defined(overrides.events),
    },
  };
}

/** Drops keys set to undefined, so `{ seed: undefined }` keeps the default. */
function defined<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}
