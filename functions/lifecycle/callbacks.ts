/**
 * Delivering a job's callback from the outbox (part of the lifecycle). The commit that ends a job
 * writes its outbox record (`CallbacksStore`); every attempt goes through that record: it is taken
 * under a precondition (so two senders at once do not both send), the job's view is POSTed, and the
 * attempt's end is recorded — delivered, due again after a backoff, or given up once the receiver's
 * answer cannot change or the retry window (a day by default) has run out. The finish tries at once
 * for latency; the scheduler tick (`tick/callbacks.ts`) tries whatever is due. At least once: a
 * sender that dies after the POST leaves the record due again when its lease ends, and the receiver
 * dedupes on the `webhook-id` (`callbackIdFor`: the same on every attempt). Each callback is signed
 * with the key of the job's owner, read from the job at each attempt.
 */
import { callbackIdFor } from '../api/webhooks.js';
import type { CallbackView, JobRecord, JobView } from '../core/jobs.js';
import { backoffMs } from '../core/retry.js';
import type { Logger } from '../platform/logger.js';
import type { CallbackAttemptResult, CallbackRecord } from '../platform/store/callbacks.js';
import type { LifecycleDeps } from './lifecycle.js';

/** How callbacks are retried. */
export interface CallbackPolicy {
  /** How long after the job ended a callback is still tried. */
  retryForMs: number;
  /** The wait after the first failed attempt; it doubles with each further one, up to `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs: number;
  /** How long one attempt holds its record: longer than a POST with its own retries (30 s) takes. */
  leaseMs: number;
}

export const DEFAULT_CALLBACK_POLICY: CallbackPolicy = {
  retryForMs: 24 * 60 * 60_000,
  backoffMs: 60_000,
  maxBackoffMs: 60 * 60_000,
  leaseMs: 5 * 60_000,
};

/** How one delivery went: sent, failed and due again, given up, or taken by another sender. */
export type CallbackOutcome = 'delivered' | 'retry' | 'gaveUp' | 'busy';

/** The wait before the attempt after `attempts` failed ones. */
export function callbackBackoffMs(policy: CallbackPolicy, attempts: number): number {
  return backoffMs({ baseMs: policy.backoffMs, maxMs: policy.maxBackoffMs }, Math.max(1, attempts));
}

/** The callback's state as the job view shows it. */
export function callbackViewOf(record: CallbackRecord): CallbackView {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    state: record.state,
    attempts: record.attempts,
    lastError: record.lastError,
    nextAttemptAt: record.state === 'pending' ? iso(record.dueMs) : null,
    deliveredAt: iso(record.deliveredAtMs),
  };
}

/** The outbox half of the lifecycle (spread into it); `viewOf` is the lifecycle's `view`. */
export function createCallbackSender(
  deps: LifecycleDeps,
  clock: () => number,
  viewOf: (jobId: string) => Promise<JobView | undefined>,
) {
  const policy = { ...DEFAULT_CALLBACK_POLICY, ...deps.callbackPolicy };
  const { callbacks } = deps.stores;

  /** One POST of the job's view; how it ended, as the record keeps it. */
  async function attempt(claimed: CallbackRecord): Promise<CallbackAttemptResult> {
    let view: JobView | undefined;
    let job: JobRecord | undefined;
    try {
      [view, job] = await Promise.all([viewOf(claimed.jobId), deps.stores.jobs.get(claimed.jobId)]);
    } catch (err) {
      // Nothing was sent: the record is due again after the usual backoff, not after the claim's
      // whole lease (a store blip must not hold a callback back for minutes).
      return again(claimed, (err as Error).message, false);
    }
    if (!view || !job) return { state: 'failed', error: 'the job no longer exists' };
    // The body is the job as it ended; its callback's own state is no part of it.
    const { callback: _own, ...body } = view;
    try {
      const event = { id: callbackIdFor(claimed.jobId), ...(job.owner ? { owner: job.owner } : {}) };
      await deps.notify(claimed.url, body, event);
      return { state: 'delivered', atMs: clock() };
    } catch (err) {
      // A CallbackError says whether another attempt could fare better; anything else may.
      return again(claimed, (err as Error).message, (err as { retryable?: boolean }).retryable === false);
    }
  }

  /** A failed attempt: due again after the backoff, or failed for good (final, or past the window). */
  function again(claimed: CallbackRecord, error: string, final: boolean): CallbackAttemptResult {
    const dueMs = clock() + callbackBackoffMs(policy, claimed.attempts);
    if (final || dueMs > claimed.sinceMs + policy.retryForMs) return { state: 'failed', error };
    return { state: 'pending', dueMs, error };
  }

  function logResult(log: Logger, claimed: CallbackRecord, result: CallbackAttemptResult): void {
    const fields = { jobId: claimed.jobId, attempts: claimed.attempts };
    if (result.state === 'delivered') {
      log.info({ event: 'job.callback_delivered', ...fields }, 'callback delivered');
    } else if (result.state === 'pending') {
      const nextAttemptAt = new Date(result.dueMs).toISOString();
      log.error(
        { event: 'job.callback_failed', ...fields, err: result.error, nextAttemptAt },
        'callback failed; it is tried again',
      );
    } else {
      log.error(
        { event: 'job.callback_gave_up', ...fields, err: result.error },
        'callback failed for good; the job view says so',
      );
    }
  }

  const sender = {
    /**
     * One attempt at a pending outbox record: takes it (false → `busy`: another sender has it),
     * POSTs the job's view, records the end. Store failures are thrown; the record is then due
     * again once the attempt's lease has run out.
     */
    async deliverCallback(record: CallbackRecord, log: Logger = deps.logger): Promise<CallbackOutcome> {
      if (record.state !== 'pending') return 'busy';
      const claimed = await callbacks.claim(record, clock() + policy.leaseMs);
      if (!claimed) return 'busy';
      const result = await attempt(claimed);
      logResult(log, claimed, result);
      // Lost only when this attempt outlived its lease and another sender took the record: that
      // one sends it again (at least once), so there is nothing more to do here.
      await callbacks.settle(claimed, result);
      return result.state === 'delivered' ? 'delivered' : result.state === 'pending' ? 'retry' : 'gaveUp';
    },

    /** The attempt right after a job ended, through its outbox record (if it has one, still due). */
    async deliverCallbackNow(jobId: string, log: Logger = deps.logger): Promise<CallbackOutcome | undefined> {
      const record = await callbacks.get(jobId);
      if (record?.state !== 'pending' || (record.dueMs ?? 0) > clock()) return undefined;
      return sender.deliverCallback(record, log);
    },

    /** The job's callback as its view shows it (undefined until the job has ended). */
    async callbackView(jobId: string): Promise<CallbackView | undefined> {
      const record = await callbacks.get(jobId);
      return record && callbackViewOf(record);
    },
  };
  return sender;
}
