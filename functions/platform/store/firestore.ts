import { Timestamp } from '@google-cloud/firestore';

/**
 * What the narrow stores share about Firestore: timestamps, document versions (the update time a
 * precondition names) and which gRPC codes mean what.
 */

export const toDate = (v: unknown): Date | null => (v instanceof Timestamp ? v.toDate() : null);

export const toMicros = (t: Timestamp): number => t.seconds * 1_000_000 + Math.floor(t.nanoseconds / 1000);

export function fromMicros(micros: number): Timestamp {
  return new Timestamp(Math.floor(micros / 1_000_000), (micros % 1_000_000) * 1000);
}

/** A document's update time as an opaque version string (a precondition for a later write). */
export function encodeVersion(t: Timestamp): string {
  return `${t.seconds}.${String(t.nanoseconds).padStart(9, '0')}`;
}

export function decodeVersion(version: string): Timestamp {
  const m = /^(\d+)\.(\d{9})$/.exec(version);
  if (!m) throw new Error(`not a document version: ${version}`);
  return new Timestamp(Number(m[1]), Number(m[2]));
}

const FAILED_PRECONDITION = 9;
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;

/**
 * The write's precondition did not hold: someone else changed (or deleted) the document since we
 * read it. Only this means "another writer won"; ABORTED (10, contention) and every other code are
 * faults worth another attempt, never a decision.
 */
export function isPreconditionFailure(err: unknown): boolean {
  const code = (err as { code?: number }).code;
  return code === FAILED_PRECONDITION || code === NOT_FOUND;
}

export function isAlreadyExists(err: unknown): boolean {
  return (err as { code?: number }).code === ALREADY_EXISTS;
}

/** For writes whose losing the race is fine (someone else did it). */
export function ignorePreconditionFailure(err: unknown): void {
  if (!isPreconditionFailure(err)) throw err;
}

/** True once a write with a precondition lands; false when the precondition failed (someone else won). */
export async function landed(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (err) {
    ignorePreconditionFailure(err);
    return false;
  }
}
