import { setTimeout as wait } from 'node:timers/promises';

/**
 * Waits `ms`, or rejects with the signal's reason once it aborts (at once if it already has). The
 * one abortable sleep of the product, the CLI and the local cloud; it sits in api/, the layer every
 * other one may import. Node's own timer rejects with a generic `AbortError`; callers here tell
 * aborts apart by their reason (media's typed deadlines, a stopped batch), so that is what is thrown.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await wait(ms, undefined, signal ? { signal } : undefined);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}
