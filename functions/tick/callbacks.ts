import type { CallbackOutcome } from '../lifecycle/callbacks.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { Logger } from '../platform/logger.js';
import type { CallbacksStore } from '../platform/store/callbacks.js';

/** What the callback duty of a tick needs. */
export interface CallbackDutyDeps {
  callbacks: Pick<CallbacksStore, 'listDue'>;
  lifecycle: Pick<Lifecycle, 'deliverCallback'>;
  logger: Logger;
  now?: () => number;
  /** Records tried per tick. */
  limit?: number;
  /** Records tried at once (each POST may take up to 30 s with its own retries). */
  concurrency?: number;
}

export interface CallbackDutyReport {
  delivered: number;
  /** Attempts that failed and are due again later. */
  failed: number;
  /** Callbacks given up for good (an answer that cannot change, or the retry window ran out). */
  gaveUp: number;
}

const CALLBACKS_PER_TICK = 50;
const CALLBACKS_AT_ONCE = 8;

/**
 * The tick's callback duty: every outbox record that is due gets one attempt through the lifecycle
 * (`deliverCallback`: taken under a precondition, so two ticks at once do not both send; retried with
 * backoff for up to a day). A record whose attempt throws (a store fault) is logged and left due:
 * it never stops the others. Bounded per tick; the longest-due first.
 */
export async function deliverCallbacks(deps: CallbackDutyDeps): Promise<CallbackDutyReport> {
  const now = (deps.now ?? Date.now)();
  const due = await deps.callbacks.listDue(now, deps.limit ?? CALLBACKS_PER_TICK);
  const report: CallbackDutyReport = { delivered: 0, failed: 0, gaveUp: 0 };
  const tally: Record<CallbackOutcome, keyof CallbackDutyReport | undefined> = {
    delivered: 'delivered',
    retry: 'failed',
    gaveUp: 'gaveUp',
    busy: undefined,
  };
  const one = async (record: (typeof due)[number]) => {
    const log = deps.logger.child({ jobId: record.jobId });
    try {
      const counted = tally[await deps.lifecycle.deliverCallback(record, log)];
      if (counted) report[counted]++;
    } catch (err) {
      log.error(
        { event: 'job.callback_attempt_failed', err: (err as Error).message },
        'callback attempt could not be recorded; it is due again once its lease runs out',
      );
    }
  };
  const width = deps.concurrency ?? CALLBACKS_AT_ONCE;
  for (let at = 0; at < due.length; at += width) await Promise.all(due.slice(at, at + width).map(one));
  return report;
}
