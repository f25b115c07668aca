/**
 * The simulation's clock and event loop: a priority queue of timed events (time, then insertion
 * order, so equal times replay identically). `run` advances time to the next event, fires it, and
 * lets the program settle before the next one: every pending microtask, and every zero-time round
 * trip the fake stores take (`setImmediate`), which `track` counts. Nothing else in the simulated
 * world may use real timers: a real `setTimeout` would never fire in simulated time.
 */

interface SimEvent {
  atMs: number;
  seq: number;
  fire: () => void;
}

/** A promise that never settles: a crashed process never answers. */
export const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

export class SimClock {
  private heap: SimEvent[] = [];
  private seq = 0;
  private nowMs: number;
  /** Real (zero-time) operations still in flight: the loop waits for them before moving time. */
  private inflight = 0;
  /** Events fired so far (the runner bounds it, to catch a busy loop in simulated time). */
  fired = 0;

  constructor(startMs: number) {
    this.nowMs = startMs;
  }

  /** The simulated time, in epoch ms; the `now` injected into every product dependency. */
  readonly now = (): number => this.nowMs;

  /** Fires `fire` at `atMs` (not before now). */
  at(atMs: number, fire: () => void): void {
    this.push({ atMs: Math.max(atMs, this.nowMs), seq: this.seq++, fire });
  }

  /** Fires `fire` `ms` from now. */
  after(ms: number, fire: () => void): void {
    this.at(this.nowMs + Math.max(0, ms), fire);
  }

  /** Resolves after `ms` of simulated time; the `sleep` injected into the product. */
  readonly sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => this.after(ms, resolve));

  /** Counts a real operation (a fake store's round trip) until it settles. */
  track<T>(work: Promise<T>): Promise<T> {
    this.inflight++;
    return work.then(
      (value) => {
        this.inflight--;
        return value;
      },
      (err: unknown) => {
        this.inflight--;
        throw err;
      },
    );
  }

  /** Runs until `done()` says so, the queue is empty, or time passes `untilMs`. */
  async run(untilMs: number, done: () => boolean, maxEvents = 2_000_000): Promise<void> {
    await this.settle();
    while (this.heap.length > 0 && !done()) {
      const next = this.heap[0]!;
      if (next.atMs > untilMs) break;
      this.pop();
      this.nowMs = next.atMs;
      if (++this.fired > maxEvents) throw new Error(`more than ${maxEvents} events: a busy loop?`);
      next.fire();
      await this.settle();
    }
  }

  /** Waits until no microtask and no tracked round trip is left. */
  async settle(): Promise<void> {
    for (let turns = 0; ; turns++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.inflight === 0) return;
      if (turns > 1_000_000) throw new Error('the simulated world never settled');
    }
  }

  private less(a: SimEvent, b: SimEvent): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  private push(event: SimEvent): void {
    const h = this.heap;
    h.push(event);
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
