/**
 * The worker function's capacity, as Cloud Run enforces it: at most max instances × concurrency
 * requests at once (`max_instance_request_concurrency` × `max_instance_count` in Terraform). A request
 * beyond that waits for a free slot, and fails with 429 when none frees within the pending window:
 * "incoming requests can be queued for up to 10 seconds ... If no instances become available during
 * the window, the request fails with a 429 error code" (cloud.google.com/run/docs/about-instance-autoscaling,
 * "Exceeding maximum instances"). The local functions host keeps one gate in its primary for all its
 * instances, as Cloud Run routes a request to any instance with a free slot.
 */

/** The local worker's capacity, from the host's environment. */
export interface WorkerCapacity {
  /** `FANOUT_INSTANCES` (default 2): the instances the local host runs, its max instances. */
  instances: number;
  /**
   * `FANOUT_WORKER_CONCURRENCY` (default 200): requests one instance serves at once (Terraform's
   * `worker_concurrency`). Two instances of 200 take one queue's 500 dispatches a second at 300 ms
   * of Gemini latency (150 in flight) with room for the others.
   */
  concurrency: number;
  /** `FANOUT_WORKER_PENDING_MS` (default 10,000, Cloud Run's documented window): how long a request waits for a slot. */
  pendingMs: number;
}

export function workerCapacityFromEnv(env: NodeJS.ProcessEnv): WorkerCapacity {
  const positive = (name: string, fallback: number) => {
    const value = env[name] === undefined || env[name] === '' ? fallback : Number(env[name]);
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`${name} must be a whole number ≥ 1, got ${env[name]}`);
    return value;
  };
  return {
    instances: positive('FANOUT_INSTANCES', 2),
    concurrency: positive('FANOUT_WORKER_CONCURRENCY', 200),
    pendingMs: positive('FANOUT_WORKER_PENDING_MS', 10_000),
  };
}

/** Requests the worker serves at once: what its queues' concurrent dispatches must share. */
export const workerSlots = (c: WorkerCapacity) => c.instances * c.concurrency;

interface Timers {
  set: (fn: () => void, ms: number) => unknown;
  clear: (handle: unknown) => void;
}

const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * The gate: `acquire` answers true at once while fewer than `limit` requests hold a slot, else when
 * one is released within `pendingMs` (first come, first served), else false. Slots are held by an
 * owner (an instance): when it dies, `dropOwner` frees its slots and forgets its waiting requests.
 */
export class SlotGate {
  private inUse = 0;
  private readonly held = new Map<string, number>();
  private readonly waiting: Array<{ owner: string; answer: (granted: boolean) => void; timer: unknown }> = [];

  constructor(
    readonly limit: number,
    readonly pendingMs: number,
    private readonly timers: Timers = realTimers,
  ) {}

  /** Requests holding a slot now. */
  get busy(): number {
    return this.inUse;
  }

  /** Requests waiting for a slot now. */
  get queued(): number {
    return this.waiting.length;
  }

  acquire(owner: string, answer: (granted: boolean) => void): void {
    if (this.inUse < this.limit) {
      this.take(owner);
      answer(true);
      return;
    }
    const entry = {
      owner,
      answer,
      timer: this.timers.set(() => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        answer(false);
      }, this.pendingMs),
    };
    this.waiting.push(entry);
  }

  release(owner: string): void {
    const n = this.held.get(owner) ?? 0;
    if (n === 0) return;
    this.held.set(owner, n - 1);
    this.inUse--;
    this.admitNext();
  }

  /** An instance died: its requests are gone, and so are their slots. */
  dropOwner(owner: string): void {
    this.inUse -= this.held.get(owner) ?? 0;
    this.held.delete(owner);
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      if (this.waiting[i]!.owner !== owner) continue;
      this.timers.clear(this.waiting[i]!.timer);
      this.waiting.splice(i, 1);
    }
    while (this.inUse < this.limit && this.waiting.length > 0) this.admitNext();
  }

  private take(owner: string): void {
    this.inUse++;
    this.held.set(owner, (this.held.get(owner) ?? 0) + 1);
  }

  private admitNext(): void {
    const next = this.waiting.shift();
    if (!next) return;
    this.timers.clear(next.timer);
    this.take(next.owner);
    next.answer(true);
  }
}
