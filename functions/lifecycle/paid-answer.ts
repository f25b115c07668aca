import type { ItemOutcome } from '../core/jobs.js';
import type { Logger } from '../platform/logger.js';
import {
  answerObjectName,
  isMissingObject,
  type ObjectStore,
  parkedAnswerName,
} from '../platform/object-store.js';
import type { ItemRef, StoredOutcome } from '../platform/store/items.js';

/**
 * A paid answer is never bought twice. Once Gemini has answered, its outcome write is retried in
 * place for the rest of the delivery's lease (a retry by the queue would call, and bill, Gemini
 * again). If the store stays down that long, the answer is parked in the bucket before the lease ends
 * (`parkedAnswerName`: response or big-response object, usage, cost) and the next delivery that
 * claims the item records it instead of calling Gemini. The bucket is the one durable place left
 * when the item write is what fails, so a claim looks there, but only for an item leased before.
 */

/** A lease a delivery holds: the item at a known version, owned until `untilMs`. */
export type Lease = ItemRef & { untilMs: number };

/** A succeeded outcome as parked in the bucket (and as recorded from there). */
export type ParkedAnswer = Extract<StoredOutcome, { state: 'succeeded' }>;

/** Time kept at the end of a lease to park an answer whose outcome could not be written. */
export const PARK_MARGIN_MS = 10_000;

/** Firestore's INVALID_ARGUMENT: how it refuses a document over 1 MiB. */
export const INVALID_ARGUMENT = 3;

/**
 * Responses larger than this go to the bucket, with a pointer on the item: an item document holds
 * at most 1 MiB, and its request (up to 256 KiB) is already there.
 */
export const INLINE_RESPONSE_MAX_BYTES = 512 * 1024;

/** Whether a serialised response is stored on its item's document (else in the bucket). */
export function fitsInline(responseJson: string): boolean {
  return Buffer.byteLength(responseJson) <= INLINE_RESPONSE_MAX_BYTES;
}

/** The outcome write failed for the whole lease; the answer waits in the bucket (`objectName`). */
export class AnswerParkedError extends Error {
  constructor(
    readonly objectName: string,
    options: { cause: unknown },
  ) {
    super(
      `the outcome could not be written within the lease; the answer is parked in ${objectName}`,
      options,
    );
    this.name = 'AnswerParkedError';
  }
}

/** Runs a write, retrying faults in place; with `untilMs`, until then rather than a few times. */
export type Persist = <T>(
  what: string,
  ref: Pick<ItemRef, 'jobId' | 'itemId'>,
  write: () => Promise<T>,
  untilMs?: number,
) => Promise<T>;

export interface PaidAnswerDeps {
  objects: ObjectStore;
  logger: Logger;
  persist: Persist;
  /** Writes an outcome (retried until `untilMs` when given): false when the lease was lost. */
  settle: (ref: ItemRef, outcome: StoredOutcome, untilMs?: number) => Promise<boolean>;
}

export function createPaidAnswers(deps: PaidAnswerDeps) {
  const { objects, persist, settle } = deps;
  /** Until when a delivery holding `lease` writes in place (without a lease's end: a few attempts). */
  const writeUntil = (lease: ItemRef & { untilMs?: number }) =>
    lease.untilMs === undefined ? undefined : lease.untilMs - PARK_MARGIN_MS;

  /** Stores a response too big for its item's document in the bucket; the object's name. */
  const offload = async (item: Pick<ItemRef, 'jobId' | 'itemId'>, response: unknown, untilMs?: number) => {
    const name = answerObjectName(item.jobId, item.itemId);
    await persist('answer object', item, () => objects.putJson(name, response), untilMs);
    return name;
  };

  /** Parks the answer (a few attempts: the lease is nearly over); the error that says so. */
  const park = async (lease: ItemRef, answer: ParkedAnswer, cause: unknown) => {
    const name = parkedAnswerName(lease.jobId, lease.itemId);
    const ids = { jobId: lease.jobId, itemId: lease.itemId };
    try {
      await persist('parked answer', lease, () => objects.putJson(name, answer));
    } catch (err) {
      deps.logger.error(
        { event: 'item.answer_lost', ...ids, err: (err as Error).message, cause: (cause as Error).message },
        'neither the outcome nor the parked answer could be written; the next delivery calls Gemini again',
      );
      throw err;
    }
    deps.logger.warn(
      { event: 'item.answer_parked', ...ids, object: name, err: (cause as Error).message },
      'the outcome could not be written within the lease; the answer waits in the bucket',
    );
    return new AnswerParkedError(name, { cause });
  };

  return {
    offload,

    /**
     * Records a paid answer, retrying until the lease's end (less the margin to park it); big
     * responses go to the bucket first. False when the lease was lost. Throws `AnswerParkedError`
     * once the answer is parked instead.
     */
    async record(lease: ItemRef & { untilMs?: number }, outcome: ItemOutcome & { state: 'succeeded' }) {
      const untilMs = writeUntil(lease);
      let answer: ParkedAnswer = outcome;
      const offloaded = async () => {
        const { response, ...rest } = outcome;
        answer = { ...rest, responseObject: await offload(lease, response, untilMs) };
        return settle(lease, answer, untilMs);
      };
      try {
        const responseJson = JSON.stringify(outcome.response);
        if (!fitsInline(responseJson)) return await offloaded();
        try {
          return await settle(lease, { ...outcome, responseJson }, untilMs);
        } catch (err) {
          // The request and the response together were still too big for one document.
          if ((err as { code?: number }).code === INVALID_ARGUMENT) return await offloaded();
          throw err;
        }
      } catch (err) {
        if (untilMs === undefined) throw err;
        throw await park(lease, answer, err);
      }
    },

    /** The answer an earlier delivery parked for this item, if any. */
    async find(jobId: string, itemId: string): Promise<ParkedAnswer | undefined> {
      try {
        return parkedAnswerFrom(await objects.getJson(parkedAnswerName(jobId, itemId)));
      } catch (err) {
        if (isMissingObject(err)) return undefined;
        throw err;
      }
    },

    /**
     * Records a parked answer (retried until the lease's end), then drops the parked copy; throws
     * `AnswerParkedError` if the write still fails (the answer stays parked for the next delivery).
     */
    async recordParked(lease: ItemRef & { untilMs?: number }, answer: ParkedAnswer): Promise<boolean> {
      const name = parkedAnswerName(lease.jobId, lease.itemId);
      let written: boolean;
      try {
        written = await settle(lease, answer, writeUntil(lease));
      } catch (cause) {
        // Still unwritten, still parked: the caller hands the item on, it never fails it.
        throw new AnswerParkedError(name, { cause });
      }
      if (written) {
        // A copy left behind is harmless (the item is terminal and never reads it again).
        await objects.delete(name).catch((err: Error) =>
          deps.logger.warn(
            {
              event: 'item.parked_delete_failed',
              jobId: lease.jobId,
              itemId: lease.itemId,
              err: err.message,
            },
            'could not delete a recorded parked answer',
          ),
        );
      }
      return written;
    },
  };
}

/** A parked answer as read back; anything else (not ours, half a shape) is no answer. */
function parkedAnswerFrom(value: unknown): ParkedAnswer | undefined {
  const v = value as Partial<ParkedAnswer> | null;
  if (v?.state !== 'succeeded') return undefined;
  if (v.response === undefined && typeof v.responseObject !== 'string') return undefined;
  return v as ParkedAnswer;
}
