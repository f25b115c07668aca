/**
 * Faults at await points. Every dependency the product awaits (the stores, the task queue, Gemini,
 * the bucket, the callback) is wrapped so that each call gets a number, in the order the run makes
 * them, and the seed's plan decides what that call does:
 * - `throw-before`: the call fails and did nothing (a refused RPC);
 * - `throw-after`: it took effect but the caller sees an error (an ambiguous commit);
 * - `hang-before` / `hang-after`: it never returns — the process died there: no catch block runs,
 *   and only a queue's dispatch deadline or a lease can notice;
 * besides transient errors at a share of calls, simulated latency (which interleaves concurrent
 * deliveries differently per seed), and store outages (every store call fails for a while).
 */
import { never, type SimClock } from './clock.js';
import type { Rng } from './rng.js';
import type { Trace } from './trace.js';

export type CrashKind = 'throw-before' | 'throw-after' | 'hang-before' | 'hang-after';

export type DepGroup = 'store' | 'tasks' | 'gemini' | 'media' | 'objects' | 'notify';

export interface FaultKnobs {
  /** Call number (1-based, over the whole run) → what that call does. */
  crashes: Map<number, CrashKind>;
  /** Share of calls that fail before doing anything. */
  errorShare: number;
  /** Share of store calls that take 1–300 ms of simulated time. */
  latencyShare: number;
  /** Of those, the share that take 2–15 s (contention, a retried RPC). */
  slowStoreShare: number;
  /** Store outages: every store call in a window fails. */
  storeOutages: Array<{ fromMs: number; toMs: number }>;
  /** Share of the calls each actor makes that crash (any kind): aims faults at ingest, worker or tick. */
  actorCrashShare: Partial<Record<Actor, number>>;
}

/** Who makes a call: a client through ingest, a worker delivery, or a scheduler tick. */
export type Actor = 'ingest' | 'worker' | 'tick';

export const CRASH_KINDS: readonly CrashKind[] = ['throw-before', 'throw-after', 'hang-before', 'hang-after'];

/** Methods returning async iterables: passed through untouched. */
const STREAMING = new Set(['streamOutcomes', 'read']);

export class Faults {
  /** Calls made so far, over every wrapped dependency. */
  calls = 0;
  /** Faults injected, for the report. */
  readonly injected: string[] = [];

  constructor(
    private readonly clock: SimClock,
    private readonly rng: Rng,
    private readonly trace: Trace,
    private readonly knobs: FaultKnobs,
  ) {}

  /**
   * Wraps every method of `target`. `realAsync`: its calls settle through real (zero-time) round
   * trips (the fake stores), which the clock must wait for; simulated deps settle in simulated time.
   * `actor`: who makes the calls (ingest, worker, tick), for faults aimed at one of them.
   */
  wrap<T extends object>(group: DepGroup, name: string, target: T, realAsync: boolean, actor: Actor): T {
    const cache = new Map<PropertyKey, unknown>();
    return new Proxy(target, {
      get: (obj, prop) => {
        const value = Reflect.get(obj, prop, obj);
        if (typeof value !== 'function' || STREAMING.has(String(prop))) return value;
        if (!cache.has(prop)) {
          const label = `${name}.${String(prop)}`;
          const fn = value as (...args: unknown[]) => Promise<unknown>;
          cache.set(prop, (...args: unknown[]) =>
            this.call(actor, group, label, () => fn.apply(obj, args), realAsync),
          );
        }
        return cache.get(prop);
      },
    });
  }

  private async call(
    actor: Actor,
    group: DepGroup,
    label: string,
    invoke: () => Promise<unknown>,
    realAsync: boolean,
  ): Promise<unknown> {
    const n = ++this.calls;
    let crash = this.knobs.crashes.get(n);
    if (!crash && this.rng.chance(this.knobs.errorShare)) crash = 'throw-before';
    if (!crash && this.rng.chance(this.knobs.actorCrashShare[actor] ?? 0)) crash = this.rng.pick(CRASH_KINDS);
    // A lost Gemini answer is paid twice by anyone; that is no fault of the product's.
    if (group === 'gemini' && crash === 'throw-after') crash = 'throw-before';
    if (group === 'store' && this.rng.chance(this.knobs.latencyShare))
      await this.clock.sleep(
        this.rng.chance(this.knobs.slowStoreShare) ? this.rng.int(2000, 15_000) : this.rng.int(1, 300),
      );
    const now = this.clock.now();
    if (group === 'store' && this.knobs.storeOutages.some((o) => now >= o.fromMs && now < o.toMs))
      crash = 'throw-before';
    if (crash) this.note(crash, `${actor}: ${label}`, n);
    if (crash === 'throw-before') throw Object.assign(new Error(`sim: ${label} #${n} failed`), { code: 14 });
    if (crash === 'hang-before') return never();
    const result = await (realAsync ? this.clock.track(invoke()) : invoke());
    if (crash === 'throw-after')
      throw Object.assign(new Error(`sim: ${label} #${n} failed after it took effect`), { code: 14 });
    if (crash === 'hang-after') return never();
    return result;
  }

  private note(crash: CrashKind, label: string, n: number): void {
    const line = `FAULT ${crash} ${label} (call #${n})`;
    if (crash !== 'throw-before' || this.knobs.crashes.has(n)) this.injected.push(line);
    this.trace.add(line);
  }
}
