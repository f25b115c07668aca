import { randomUUID } from 'node:crypto';
import { createLocalOidcToken } from '../cloud-tasks/oidc.js';
import { createPrng, type Prng } from '../prng.js';

/** The Cloud Storage event types the stand-in emits. */
export type StorageEventType =
  | 'google.cloud.storage.object.v1.finalized'
  | 'google.cloud.storage.object.v1.deleted'
  | 'google.cloud.storage.object.v1.metadataUpdated';

/** Event type of a successful object write. */
export const FINALIZED: StorageEventType = 'google.cloud.storage.object.v1.finalized';
/** Event type of a permanent delete (including an overwrite of a live object). */
export const DELETED: StorageEventType = 'google.cloud.storage.object.v1.deleted';
/** Event type of a metadata change (PATCH or PUT of an object's metadata). */
export const METADATA_UPDATED: StorageEventType = 'google.cloud.storage.object.v1.metadataUpdated';

/**
 * An Eventarc trigger: where to POST, and which events. Like a real trigger, it names its
 * event types; without `eventTypes` it receives `finalized` only. `bucket` filters like the
 * trigger's `bucket` attribute.
 */
export interface Subscription {
  url: string;
  bucket?: string;
  eventTypes?: StorageEventType[];
  /** The trigger's service account: the identity in its OIDC token. Default: the emulator's. */
  serviceAccountEmail?: string;
}

/**
 * Delivery retries, exponential like Eventarc's (Pub/Sub push backoff: 10 s doubling up to
 * 600 s, for the 24 h the message is retained). Durations are multiplied by
 * {@link EventDeliveryOptions.timeScale}.
 */
export interface EventRetryOptions {
  /** Total attempts per delivery, the first included; `Infinity` = until the window closes. */
  maxAttempts?: number;
  /** Delay before the second attempt. */
  initialBackoffMs?: number;
  /** Cap on a single delay. */
  maxBackoffMs?: number;
  /** Multiplier between delays. */
  multiplier?: number;
  /** Give up once this much time has passed since the event was published. */
  maxDurationMs?: number;
  /** Per-attempt timeout for the receiver's answer (not scaled). */
  timeoutMs?: number;
}

/** How deliveries depart from "once, at once, in order". */
export interface EventDeliveryOptions {
  /** Share of deliveries [0, 1] sent a second time, same CloudEvent id, independently scheduled. */
  duplicateShare?: number;
  /** The first attempt waits a random time in [min, max] ms after the change. */
  delayMs?: { min: number; max: number };
  /**
   * Each delivery draws its own delay, so later changes can overtake earlier ones. Off: first
   * attempts leave in the order of the changes (per subscriber) whatever their delays.
   */
  reorder?: boolean;
  /** `Authorization: Bearer <unsigned local JWT>` with the subscriber's URL as audience. */
  oidc?: boolean;
  /** Identity in the token when the subscription names none. */
  serviceAccountEmail?: string;
  /** Multiplies every event-path duration (delays, backoffs, the retry window): 0.001 = 1000× faster. */
  timeScale?: number;
  /** Seed of the PRNG behind delays and duplicates: a run replays for a given seed. */
  seed?: number;
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
  /** This is the extra copy of an at-least-once duplicate (same `id` as the original). */
  duplicate?: true;
  /** Status code or error text of the last failed attempt. */
  lastError?: string;
}

/** Counters over every delivery since start. */
export interface DeliveryStats {
  /** Deliveries acknowledged with a 2xx (duplicates count on their own). */
  delivered: number;
  /** Deliveries abandoned after the last attempt. */
  failed: number;
  /** HTTP attempts made, retries included. */
  attempts: number;
  /** Deliveries waiting for their first attempt, in flight or waiting for a retry. */
  pending: number;
}

/** How many finished delivery records to keep for {@link Eventarc.events}. */
const RECORD_LIMIT = 1000;

/** Every knob resolved. */
export interface EventarcSettings {
  retry: Required<EventRetryOptions>;
  delivery: Required<EventDeliveryOptions>;
}

/**
 * The Eventarc stand-in: turns object changes into CloudEvents in binary content mode and
 * POSTs them to subscribers, retrying non-2xx answers and connection errors with exponential
 * backoff until the attempts or the retry window run out; every delivery ends delivered or
 * failed. At-least-once like the real service when asked: duplicates, delays, reordering.
 */
export class Eventarc {
  readonly #subscriptions: Subscription[] = [];
  readonly #retry: Required<EventRetryOptions>;
  readonly #delivery: Required<EventDeliveryOptions>;
  readonly #random: Prng;
  readonly #records: DeliveryRecord[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #controllers = new Set<AbortController>();
  /** Per subscriber URL, when the last in-order first attempt is due (reorder off). */
  readonly #lastDue = new Map<string, number>();
  #idleWaiters: (() => void)[] = [];
  #stats = { delivered: 0, failed: 0, attempts: 0, pending: 0 };
  #closed = false;

  constructor(subscriptions: Subscription[], settings: EventarcSettings) {
    this.#subscriptions.push(...subscriptions);
    this.#retry = settings.retry;
    this.#delivery = settings.delivery;
    const { duplicateShare, delayMs, timeScale } = this.#delivery;
    if (!(duplicateShare >= 0 && duplicateShare <= 1)) throw new Error('duplicateShare must be in [0, 1]');
    if (!(delayMs.min >= 0 && delayMs.max >= delayMs.min)) throw new Error('delayMs needs 0 <= min <= max');
    if (!(timeScale > 0)) throw new Error('timeScale must be > 0');
    if (!(this.#retry.maxAttempts >= 1)) throw new Error('maxAttempts must be >= 1');
    this.#random = createPrng(this.#delivery.seed);
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
    const publishedAt = Date.now();
    for (const subscription of this.#subscriptions) {
      if (subscription.bucket !== undefined && subscription.bucket !== bucket) continue;
      if (!(subscription.eventTypes ?? [FINALIZED]).includes(type)) continue;
      const id = randomUUID();
      const copies = this.#random() < this.#delivery.duplicateShare ? 2 : 1;
      for (let copy = 0; copy < copies; copy++) {
        const record: DeliveryRecord = {
          id,
          type,
          subject: `objects/${name}`,
          bucket,
          url: subscription.url,
          attempts: 0,
          state: 'pending',
          ...(copy > 0 ? { duplicate: true as const } : {}),
        };
        this.#records.push(record);
        if (this.#records.length > RECORD_LIMIT) this.#dropOldFinished();
        this.#stats.pending += 1;
        const delivery: Delivery = { record, subscription, body, time, publishedAt };
        const delay = this.#firstDelay(subscription.url, publishedAt);
        if (delay <= 0) void this.#attempt(delivery);
        else this.#later(delay, () => this.#attempt(delivery));
      }
    }
  }

  /** Scaled wait before a delivery's first attempt; in change order per URL unless reordering. */
  #firstDelay(url: string, now: number): number {
    const { min, max } = this.#delivery.delayMs;
    const drawn = (min + this.#random() * (max - min)) * this.#delivery.timeScale;
    if (this.#delivery.reorder) return drawn;
    const due = Math.max(now + drawn, this.#lastDue.get(url) ?? 0);
    this.#lastDue.set(url, due);
    return due - now;
  }

  #later(delayMs: number, run: () => Promise<void>): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void run();
    }, delayMs);
    this.#timers.add(timer);
  }

  #headers(delivery: Delivery): Record<string, string> {
    const { record, subscription, time } = delivery;
    const headers: Record<string, string> = {
      'ce-specversion': '1.0',
      'ce-id': record.id,
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${record.bucket}`,
      'ce-type': record.type,
      'ce-subject': record.subject,
      'ce-time': time,
      'content-type': 'application/json; charset=utf-8',
    };
    if (this.#delivery.oidc) {
      const email = subscription.serviceAccountEmail ?? this.#delivery.serviceAccountEmail;
      headers.authorization = `Bearer ${createLocalOidcToken(email, record.url, Date.now())}`;
    }
    return headers;
  }

  async #attempt(delivery: Delivery): Promise<void> {
    if (this.#closed) return;
    const { record } = delivery;
    record.attempts += 1;
    this.#stats.attempts += 1;
    const controller = new AbortController();
    this.#controllers.add(controller);
    const timer = setTimeout(() => controller.abort(), this.#retry.timeoutMs);
    try {
      const response = await fetch(record.url, {
        method: 'POST',
        headers: this.#headers(delivery),
        body: delivery.body,
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
    const scale = this.#delivery.timeScale;
    const delay =
      Math.min(
        this.#retry.initialBackoffMs * this.#retry.multiplier ** (record.attempts - 1),
        this.#retry.maxBackoffMs,
      ) * scale;
    const outOfTime = Date.now() + delay - delivery.publishedAt > this.#retry.maxDurationMs * scale;
    if (record.attempts >= this.#retry.maxAttempts || outOfTime) return this.#settle(record, 'failed');
    this.#later(delay, () => this.#attempt(delivery));
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

  /** Resolves once no delivery is waiting, in flight or waiting for a retry. */
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

/** One event on its way to one subscriber. */
interface Delivery {
  record: DeliveryRecord;
  subscription: Subscription;
  body: string;
  time: string;
  publishedAt: number;
}
