import { sleep as abortableSleep } from '../api/sleep.js';
import type { Lease } from '../lifecycle/lifecycle.js';
import type { WorkerDeps } from './handler.js';

/**
 * A delivery's lease must not run out under it: a second delivery would then take the item and call
 * Gemini too. A lease is taken for the Gemini timeout plus a margin; a delivery that spends a while
 * before the call (media, replanning) renews it first, so what is left covers the rest of its work.
 */

/** What a delivery needs after Gemini has answered: the outcome write, and failing that, parking it. */
export const AFTER_ANSWER_MS = 30_000;

/**
 * The longest a delivery waits for a replanning (the model's ledger is one transaction at a time per
 * instance: a burst of late deliveries queues behind it). Past it the item is given back and the task
 * retried.
 */
export const REPLAN_WAIT_MAX_MS = 15_000;

/**
 * How long a lease is taken on trust: a delivery that took or renewed it longer ago than this renews
 * it again before its call, which confirms the item is still its own. A cancel ends a job's pending
 * items, leased ones too (`sweepPending`), and only the item's version tells a delivery so; one that
 * waited for seconds (a slow replanning, media, a loaded instance) would otherwise call Gemini for
 * an item already cancelled.
 */
export const CONFIRM_AFTER_MS = 1000;

/**
 * The lease, renewed if less than `needMs` of it is left or it was taken over CONFIRM_AFTER_MS ago;
 * undefined when it was lost meanwhile (the delivery stops). A delivery that goes on at once with
 * time enough left writes nothing: the happy path stays one claim and one outcome write.
 */
export async function keepLease(lease: Lease, needMs: number, deps: WorkerDeps): Promise<Lease | undefined> {
  const now = (deps.now ?? Date.now)();
  const takenMs = lease.untilMs - deps.leaseMs;
  if (lease.untilMs - now >= needMs && now - takenMs < CONFIRM_AFTER_MS) return lease;
  return deps.lifecycle.renew(lease, deps.leaseMs);
}

/** Time a delivery needs from just before its Gemini call. */
export const beforeCallMs = (deps: WorkerDeps) => deps.geminiTimeoutMs + AFTER_ANSWER_MS;

/** Time a delivery needs from just before a replanning. */
export const beforeReplanMs = (deps: WorkerDeps) => REPLAN_WAIT_MAX_MS + beforeCallMs(deps);

/** What `within` gives when the work took too long. */
export const timedOut: unique symbol = Symbol('timed out');

/**
 * `work`'s value, or `timedOut` if it takes longer than `ms`. The work is handed a signal that is
 * aborted when it timed out: what it has not begun yet it can leave undone (a ledger reservation
 * still queued for its lane), what it has begun goes on, unawaited, its failure ignored.
 */
export async function within<T>(
  work: (signal: AbortSignal) => Promise<T>,
  ms: number,
  deps: WorkerDeps,
): Promise<T | typeof timedOut> {
  const stop = new AbortController();
  const abandon = new AbortController();
  // Once the race is settled the timer is stopped; its (aborted) wait ends quietly.
  const sleep =
    deps.sleep ?? ((waitMs: number) => abortableSleep(waitMs, stop.signal).catch(() => undefined));
  const running = work(abandon.signal);
  try {
    const result = await Promise.race([running, sleep(ms).then((): typeof timedOut => timedOut)]);
    if (result === timedOut) {
      abandon.abort();
      running.catch(() => undefined);
    }
    return result;
  } finally {
    stop.abort();
  }
}
