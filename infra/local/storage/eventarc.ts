import { randomUUID } from 'node:crypto';

/** The two Cloud Storage event types the stand-in emits. */
export type StorageEventType =
  | 'google.cloud.storage.object.v1.finalized'
  | 'google.cloud.storage.object.v1.deleted';

/** Event type of a successful object write. */
export const FINALIZED: StorageEventType = 'google.cloud.storage.object.v1.finalized';
/** Event type of a permanent delete (including an overwrite of a live object). */
export const DELETED: StorageEventType = 'google.cloud.storage.object.v1.deleted';

/**
 * An Eventarc trigger: where to POST, and which events. Like a real trigger, it names its
 * event types; without `eventTypes` it receives `finalized` only. `bucket` filters like the
 * trigger's `bucket` attribute.
 */
export interface Subscription {
  url: string;
  bucket?: string;
  eventTypes?: StorageEventType[];
}

/**
 * Delivery retries, exponential like Eventarc's (which uses Pub/Sub push backoff). Real
 * Eventarc starts at 10 s and keeps trying for 24 h; the defaults here are shorter so a
 * local run does not stall, and tests shorten them further.
 */
export interface EventRetryOptions {
  /** Total attempts per delivery, the first included. Default 8. */
  maxAttempts?: number;
  /** Delay before the second attempt. Default 1000 ms. */
  initialBackoffMs?: number;
  /** Cap on a single delay. Default 60 s. */
  maxBackoffMs?: number;
  /** Multiplier between delays. Default 2. */
  multiplier?: number;
  /** Give up once this much time has passed since the first attempt. Default 10 min. */
  maxDurationMs?: number;
  /** Per-attempt timeout for the receiver's answer. Default 60 s. */
  timeoutMs?: number;
}

/** One event to one subscriber, and how its delivery went. */
export interface DeliveryRecord {
  id: string;
  type: StorageEventType;
  subject: string;
  bucket: string;
  url: string;
  attempts: number;
  state: 'pending' | 'delivered' | 'failed';
  /** Status code or error text of the last failed attempt. */
  lastError?: string;
}

/** Counters over every delivery since start. */
export interface DeliveryStats {
  /** Deliveries acknowledged with a 2xx. */
  delivered: number;
  /** Deliveries abandoned after the last attempt. */
  failed: number;
  /** HTTP attempts made, retries included. */
  attempts: number;
  /** Deliveries still in flight or waiting for a retry. */
  pending: number;
}

/** How many finished delivery records to keep for {@link Eventarc.events}. */
const RECORD_LIMIT = 1000;

/**
 * The Eventarc stand-in: turns object changes into CloudEvents in binary content mode and
 * POSTs them to subscribers, retrying non-2xx answers and connection errors with exponential
 * backoff. Every delivery is independent (no ordering), as with the real service.
 */
export class Eventarc {
  readonly #subscriptions: Subscription[] = [];
  readonly #retry: Required<EventRetryOptions>;
  readonly #records: DeliveryRecord[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #controllers = new Set<AbortController>();
  #idleWaiters: (() => void)[] = [];
  #stats = { delivered: 0, failed: 0, attempts: 0, pending: 0 };
  #closed = false;

  constructor(subscriptions: Subscription[] = [], retry: EventRetryOptions = {}) {
    this.#subscriptions.push(...subscriptions);
    this.#retry = {
      maxAttempts: retry.maxAttempts ?? 8,
      initialBackoffMs: retry.initialBackoffMs ?? 1000,
      maxBackoffMs: retry.maxBackoffMs ?? 60_000,
      multiplier: retry.multiplier ?? 2,
      maxDurationMs: retry.maxDurationMs ?? 600_000,
      timeoutMs: retry.timeoutMs ?? 60_000,
    };
  }

  /** Adds a subscriber for events from now on. */
  subscribe(subscription: Subscription): void {
    this.#subscriptions.push(subscription);
  }

  /** Sends `data` (the object resource) as an event of `type` to every matching subscriber. */
  publish(
    type: StorageEventType,
    bucket: string,
    name: string,
    time: string,
    data: Record<string, unknown>,
  ): void {
    if (this.#closed) return;
    const body = JSON.stringify(data);
    for (const subscription of this.#subscriptions) {
      if (subscription.bucket !== undefined && subscription.bucket !== bucket) continue;
      if (!(subscription.eventTypes ?? [FINALIZED]).includes(type)) continue;
      const record: DeliveryRecord = {
        id: randomUUID(),
        type,
        subject: `objects/${name}`,
        bucket,
        url: subscription.url,
        attempts: 0,
        state: 'pending',
      };
      this.#records.push(record);
      if (this.#records.length > RECORD_LIMIT) this.#dropOldFinished();
      this.#stats.pending += 1;
      void this.#attempt(record, body, time, Date.now());
    }
  }

  async #attempt(record: DeliveryRecord, body: string, time: string, firstAt: number): Promise<void> {
    if (this.#closed) return;
    record.attempts += 1;
    this.#stats.attempts += 1;
    const controller = new AbortController();
    this.#controllers.add(controller);
    const timer = setTimeout(() => controller.abort(), this.#retry.timeoutMs);
    try {
      const response = await fetch(record.url, {
        method: 'POST',
        headers: {
          'ce-specversion': '1.0',
          'ce-id': record.id,
          'ce-source': `//storage.googleapis.com/projects/_/buckets/${record.bucket}`,
          'ce-type': record.type,
          'ce-subject': record.subject,
          'ce-time': time,
          'content-type': 'application/json; charset=utf-8',
        },
        body,
        signal: controller.signal,
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return this.#settle(record, 'delivered');
      record.lastError = `HTTP ${response.status}`;
    } catch (error) {
      record.lastError = error instanceof Error ? error.message : String(error);
    } finally {
      clearTimeout(timer);
      this.#controllers.delete(controller);
    }
    if (this.#closed) return;
    const delay = Math.min(
      this.#retry.initialBackoffMs * this.#retry.multiplier ** (record.attempts - 1),
      this.#retry.maxBackoffMs,
    );
    const outOfTime = Date.now() + delay - firstAt > this.#retry.maxDurationMs;
    if (record.attempts >= this.#retry.maxAttempts || outOfTime) return this.#settle(record, 'failed');
    const retry = setTimeout(() => {
      this.#timers.delete(retry);
      void this.#attempt(record, body, time, firstAt);
    }, delay);
    this.#timers.add(retry);
  }

  #settle(record: DeliveryRecord, state: 'delivered' | 'failed'): void {
    record.state = state;
    this.#stats[state] += 1;
    this.#stats.pending -= 1;
    if (this.#stats.pending === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  #dropOldFinished(): void {
    const index = this.#records.findIndex((r) => r.state !== 'pending');
    if (index >= 0) this.#records.splice(index, 1);
  }

  /** Delivery counters. */
  stats(): DeliveryStats {
    return { ...this.#stats };
  }

  /** The most recent deliveries (up to 1000), oldest first, as copies. */
  events(): DeliveryRecord[] {
    return this.#records.map((r) => ({ ...r }));
  }

  /** Resolves once no delivery is in flight or waiting for a retry. */
  idle(): Promise<void> {
    if (this.#stats.pending === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops retrying and aborts attempts in flight; pending deliveries are dropped. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const controller of this.#controllers) controller.abort();
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
