import { AppError } from '../platform/errors.js';

/**
 * A cap on the result and event streams one caller holds open on one instance. A stream holds a
 * connection and polls Firestore for as long as it lasts (up to the function's 60 minutes); without
 * a cap one caller could take every slot of an instance (`concurrency` 80) from everyone else.
 */
export interface StreamSlots {
  /** Takes a slot for `caller`, or throws {@link TooManyStreamsError}; call the result to give it back. */
  take(caller: string): () => void;
}

/** 429: the caller already holds as many open streams as allowed. */
export class TooManyStreamsError extends AppError {
  constructor(max: number) {
    super(`You have ${max} streams open already (the most one caller may hold); close one and try again.`, {
      statusCode: 429,
      status: 'RESOURCE_EXHAUSTED',
      retryAfterSeconds: 5,
    });
  }
}

/** Slots of this instance, at most `max` per caller. */
export function createStreamSlots(max: number): StreamSlots {
  const open = new Map<string, number>();
  return {
    take(caller) {
      const held = open.get(caller) ?? 0;
      if (held >= max) throw new TooManyStreamsError(max);
      open.set(caller, held + 1);
      let given = false;
      return () => {
        if (given) return;
        given = true;
        const left = (open.get(caller) ?? 1) - 1;
        if (left > 0) open.set(caller, left);
        else open.delete(caller);
      };
    },
  };
}

/** Runs `stream` in one of `caller`'s slots, and gives the slot back however the stream ends. */
export async function inSlot(slots: StreamSlots, caller: string, stream: () => Promise<void>): Promise<void> {
  const giveBack = slots.take(caller);
  try {
    await stream();
  } finally {
    giveBack();
  }
}
