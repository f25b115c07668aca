/** Many writes of one caller as a few commits: what a job's new items and due times go out as. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BulkWriter, Firestore, WriteBatch } from '@google-cloud/firestore';
import pLimit from 'p-limit';

/** Firestore takes at most 500 writes and 10 MiB a commit: chunks stay well inside both. */
const CHUNK_WRITES = 250;
const CHUNK_BYTES = 4 * 1024 * 1024;
/** Commits of one call in flight at once. */
const COMMITS_AT_ONCE = 4;
/**
 * No faster into a job's items than the BulkWriter these writes used to go through was set to go
 * (5,000 at once, then 5,000 a second). Firestore itself asks a new key range to start near 500 a
 * second, which the emulator does not model (README, "Benchmarks", on ingest).
 */
const PACE = { burst: 5000, perSecond: 5000 };

/** How long after a call starts a chunk of `size` writes may go, `before` writes ahead of it. */
export function paceDelayMs(before: number, size: number): number {
  return (Math.max(0, before + size - PACE.burst) * 1000) / PACE.perSecond;
}

/** Consecutive writes, at most CHUNK_WRITES and (about) CHUNK_BYTES a chunk; never an empty one. */
export function chunksOf<T extends { bytes: number }>(writes: readonly T[]): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const write of writes) {
    if (current.length > 0 && (current.length >= CHUNK_WRITES || bytes + write.bytes > CHUNK_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(write);
    bytes += write.bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Commits `writes` a chunk at a time (`add` puts one in a batch), a few at once and paced. A write's
 * cost is mostly its request's: a BulkWriter batch holds 20, and 10,000 new items went in twice as
 * fast as 40 commits. A commit is all or nothing, so a chunk with one write that cannot be made (an
 * item already there, a precondition someone else's write broke, any fault) makes none of them:
 * those are returned, in order, for the caller to make one at a time as it did before.
 */
export async function commitChunks<T extends { bytes: number }>(
  db: Firestore,
  writes: readonly T[],
  add: (batch: WriteBatch, write: T) => void,
): Promise<T[]> {
  const commits = pLimit(COMMITS_AT_ONCE);
  const startedMs = Date.now();
  const failed: T[][] = [];
  let before = 0;
  await Promise.all(
    chunksOf(writes).map((chunk, n) => {
      const notBeforeMs = startedMs + paceDelayMs(before, chunk.length);
      before += chunk.length;
      return commits(async () => {
        const waitMs = notBeforeMs - Date.now();
        if (waitMs > 0) await sleep(waitMs);
        const batch = db.batch();
        for (const write of chunk) add(batch, write);
        await batch.commit().catch(() => {
          failed[n] = chunk;
        });
      });
    }),
  );
  return failed.flat();
}

/**
 * Makes each write on its own (what a chunk that did not commit comes to): through a BulkWriter at
 * the same pace, each retried up to 5 attempts unless its failure is `expected` (an item already
 * there, a precondition someone else's write broke: left as it is). Throws the first other failure
 * once every write has settled (a rejected write left unhandled would kill the instance).
 */
export async function writeEach<T>(
  db: Firestore,
  writes: readonly T[],
  write: (writer: BulkWriter, w: T) => Promise<unknown>,
  expected: (err: unknown) => boolean,
): Promise<void> {
  if (writes.length === 0) return;
  const writer = db.bulkWriter({
    throttling: { initialOpsPerSecond: PACE.burst, maxOpsPerSecond: 2 * PACE.perSecond },
  });
  writer.onWriteError((err) => !expected(err) && err.failedAttempts < 5);
  const settled = Promise.allSettled(writes.map((w) => write(writer, w)));
  await writer.close();
  const failed = (await settled).find((r) => r.status === 'rejected' && !expected(r.reason));
  if (failed) throw (failed as PromiseRejectedResult).reason;
}
