/**
 * `callbacks/{jobId}`: the callback outbox. The commit that turns a job terminal (its finish, or the
 * freeze of a cancel's totals) writes the job's record here when it has a callback URL (see
 * `JobsStore.finish` and `completeCancel`), so a crash after that commit cannot lose the callback:
 * the scheduler tick delivers every record that is due, with retries, until it is delivered or
 * given up (the lifecycle's `deliverCallback`).
 *
 * `dueMs` is set only while the record is pending, and only pending records are queried (one range
 * on one field: Firestore's automatic single-field index serves it). Taking a record for an attempt
 * moves `dueMs` to the end of the attempt's lease, under a precondition on the record's version, so
 * of two ticks at once only one sends; a tick that dies mid-attempt leaves the record due again once
 * the lease has run out (at least once: receivers dedupe on the `webhook-id`, `job_<jobId>`).
 */
import { FieldValue, type Firestore } from '@google-cloud/firestore';
import { decodeVersion, encodeVersion, isPreconditionFailure, landed } from './firestore.js';

export type CallbackState = 'pending' | 'delivered' | 'failed';

/** What the commit that ends a job writes to the outbox: where to send, and since when. */
export interface CallbackOrder {
  url: string;
  /** When the job ended (epoch ms): the retry window counts from here. */
  sinceMs: number;
}

/** A job's callback as the outbox keeps it. `version` is the record's update time. */
export interface CallbackRecord extends CallbackOrder {
  jobId: string;
  state: CallbackState;
  /** Attempts taken so far (one taken by a tick that died counts: it may have been sent). */
  attempts: number;
  /** When the next attempt is due (or the running attempt's lease ends); null unless pending. */
  dueMs: number | null;
  lastError: string | null;
  deliveredAtMs: number | null;
  version: string;
}

/** How an attempt ended. */
export type CallbackAttemptResult =
  | { state: 'delivered'; atMs: number }
  | { state: 'pending'; dueMs: number; error: string }
  | { state: 'failed'; error: string };

export interface CallbacksStore {
  get(jobId: string): Promise<CallbackRecord | undefined>;
  /** Pending records due at `nowMs`, the longest due first. */
  listDue(nowMs: number, limit: number): Promise<CallbackRecord[]>;
  /**
   * Takes the record for one attempt until `untilMs` (and counts the attempt), if it is still at
   * `record.version`: the taken record, or undefined when another tick took it first.
   */
  claim(record: CallbackRecord, untilMs: number): Promise<CallbackRecord | undefined>;
  /** Records how the attempt ended, if the record is still as the claim left it. */
  settle(claimed: CallbackRecord, result: CallbackAttemptResult): Promise<boolean>;
}

/** The collection of the outbox (the jobs store writes a record in its own commits). */
export const callbacksCollection = (db: Firestore, prefix = '') => db.collection(`${prefix}callbacks`);

/** A new pending record, due at once. */
export function newCallbackFields(jobId: string, order: CallbackOrder) {
  return {
    jobId,
    url: order.url,
    sinceMs: order.sinceMs,
    state: 'pending' as const,
    attempts: 0,
    dueMs: order.sinceMs,
    lastError: null,
    deliveredAtMs: null,
  };
}

/** The fields an attempt's end writes. */
function resultFields(result: CallbackAttemptResult): Record<string, unknown> {
  switch (result.state) {
    case 'delivered':
      return { state: 'delivered', dueMs: FieldValue.delete(), deliveredAtMs: result.atMs };
    case 'pending':
      return { dueMs: result.dueMs, lastError: result.error };
    case 'failed':
      return { state: 'failed', dueMs: FieldValue.delete(), lastError: result.error };
  }
}

export function createCallbacksStore(db: Firestore, prefix = ''): CallbacksStore {
  const callbacks = callbacksCollection(db, prefix);
  return {
    async get(jobId) {
      const snap = await callbacks.doc(jobId).get();
      return snap.exists ? callbackFrom(snap) : undefined;
    },

    async listDue(nowMs, limit) {
      const snap = await callbacks.where('dueMs', '<=', nowMs).orderBy('dueMs').limit(limit).get();
      return snap.docs.map(callbackFrom).filter((r) => r.state === 'pending');
    },

    async claim(record, untilMs) {
      try {
        const written = await callbacks
          .doc(record.jobId)
          .update(
            { dueMs: untilMs, attempts: FieldValue.increment(1) },
            { lastUpdateTime: decodeVersion(record.version) },
          );
        return {
          ...record,
          dueMs: untilMs,
          attempts: record.attempts + 1,
          version: encodeVersion(written.writeTime),
        };
      } catch (err) {
        if (isPreconditionFailure(err)) return undefined;
        throw err;
      }
    },

    async settle(claimed, result) {
      return landed(
        callbacks
          .doc(claimed.jobId)
          .update(resultFields(result), { lastUpdateTime: decodeVersion(claimed.version) }),
      );
    },
  };
}

function callbackFrom(snap: FirebaseFirestore.DocumentSnapshot): CallbackRecord {
  const d = snap.data() ?? {};
  return {
    jobId: snap.id,
    url: d.url,
    sinceMs: d.sinceMs ?? 0,
    state: d.state,
    attempts: d.attempts ?? 0,
    dueMs: typeof d.dueMs === 'number' ? d.dueMs : null,
    lastError: d.lastError ?? null,
    deliveredAtMs: typeof d.deliveredAtMs === 'number' ? d.deliveredAtMs : null,
    version: encodeVersion(snap.updateTime!),
  };
}
