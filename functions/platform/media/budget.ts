import { MediaError } from './error.js';

/** Media bytes one instance may hold in memory at once, across all the items it runs. */
export const DEFAULT_MEDIA_BUDGET_BYTES = 256 * 1024 * 1024;
/** How long a fetch waits for room before it gives up with a retryable error. */
export const DEFAULT_BUDGET_WAIT_MS = 10_000;

/** Bytes granted to one fetch: shrink it when less turned out to be needed, release it when done. */
export interface MediaHold {
  readonly bytes: number;
  /** Gives back all but `bytes` (never grows the hold). */
  shrink(bytes: number): void;
  /** Gives everything back; a second call does nothing. */
  release(): void;
}

/**
 * The per-instance media memory budget. A fetch asks for the bytes it may hold before it reads;
 * requests are granted in arrival order (a big one is not starved by small ones behind it), and one
 * that finds no room within `waitMs` (or whose signal aborts) fails with a retryable MediaError, so
 * Cloud Tasks brings the item back later, maybe to another instance.
 */
export class MediaBudget {
  private held = 0;
  private readonly queue: Array<{ bytes: number; grant: () => void }> = [];

  constructor(
    readonly totalBytes: number = DEFAULT_MEDIA_BUDGET_BYTES,
    private readonly waitMs: number = DEFAULT_BUDGET_WAIT_MS,
  ) {
    if (!(totalBytes > 0)) throw new RangeError('a media budget needs some bytes');
  }

  /** Bytes held by fetches in progress. */
  get heldBytes(): number {
    return this.held;
  }

  /** Fetches waiting for room. */
  get waiting(): number {
    return this.queue.length;
  }

  async acquire(bytes: number, signal?: AbortSignal): Promise<MediaHold> {
    if (bytes > this.totalBytes) {
      throw new MediaError('the medium needs more memory than the worker may use for media', true, {
        detail: `asked ${bytes} bytes of a ${this.totalBytes}-byte budget`,
      });
    }
    if (this.queue.length === 0 && this.held + bytes <= this.totalBytes) return this.grant(bytes);
    signal?.throwIfAborted();
    return new Promise<MediaHold>((resolve, reject) => {
      const waiter = {
        bytes,
        grant: () => {
          cleanup();
          resolve(this.grant(bytes));
        },
      };
      const give = (reason: unknown) => {
        cleanup();
        const at = this.queue.indexOf(waiter);
        if (at >= 0) this.queue.splice(at, 1);
        this.drain();
        reject(reason);
      };
      const timer = setTimeout(
        () =>
          give(
            new MediaError('the worker is busy with other media; the item will be tried again', false, {
              detail: `no room for ${bytes} bytes within ${this.waitMs} ms (${this.held} of ${this.totalBytes} held)`,
            }),
          ),
        this.waitMs,
      );
      const onAbort = () => give(signal?.reason);
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private grant(initial: number): MediaHold {
    this.held += initial;
    let bytes = initial;
    const giveBack = (n: number) => {
      this.held -= n;
      bytes -= n;
      this.drain();
    };
    return {
      get bytes() {
        return bytes;
      },
      shrink: (to) => {
        if (to < bytes) giveBack(bytes - Math.max(0, to));
      },
      release: () => {
        if (bytes > 0) giveBack(bytes);
      },
    };
  }

  /** Grants waiters in order while the first one fits. */
  private drain(): void {
    while (this.queue.length > 0 && this.held + this.queue[0]!.bytes <= this.totalBytes) {
      this.queue.shift()!.grant();
    }
  }
}
