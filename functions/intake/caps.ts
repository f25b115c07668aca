/**
 * The caps on one bucket file (BUCKET_MAX_LINES, BUCKET_MAX_BYTES), enforced while the file streams
 * in: reading stops at the first line past a cap, so a file of a billion lines or a gzip bomb costs
 * what the cap allows and no more. The file is then refused as a whole (no job), and its summary
 * says which line reading stopped at and why.
 */

/** The caps of a bucket file. */
export interface BucketCaps {
  /** Lines (blank ones included: they are read too) a file may have. */
  maxLines: number;
  /** Bytes a file may have once inflated (a `.jsonl.gz` is counted after gunzip). */
  maxBytes: number;
}

/** Reading stopped at `line` (1-based) because the file passed a cap. */
export class BucketCapError extends Error {
  constructor(
    readonly line: number,
    readonly reason: 'lines' | 'bytes',
    readonly cap: number,
  ) {
    super(
      reason === 'lines'
        ? `reading stopped at line ${line}: the file has more than ${cap} lines (BUCKET_MAX_LINES); split it into smaller files`
        : `reading stopped at line ${line}: the file is larger than ${cap} bytes once inflated (BUCKET_MAX_BYTES); split it into smaller files`,
    );
    this.name = 'BucketCapError';
  }
}

/**
 * Counts a file's bytes (after gunzip) as they stream and throws `BucketCapError` as soon as they
 * pass `maxBytes`; `lineNow()` says which line was being read. Returning early, or the throw,
 * ends the source (and the gunzip and download behind it).
 */
export async function* boundedBytes(
  source: AsyncIterable<Uint8Array>,
  maxBytes: number,
  lineNow: () => number,
): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const chunk of source) {
    seen += chunk.length;
    if (seen > maxBytes) throw new BucketCapError(lineNow(), 'bytes', maxBytes);
    yield chunk;
  }
}

/** Throws `BucketCapError` when line `lineNumber` (1-based) is past `maxLines`. */
export function checkLineCap(lineNumber: number, caps: BucketCaps): void {
  if (lineNumber > caps.maxLines) throw new BucketCapError(lineNumber, 'lines', caps.maxLines);
}

/**
 * The file's lines, or why there are none to use: `stopped` past a cap (the file is refused whole;
 * the items stored before the cap are never run and expire with RETENTION_DAYS; another delivery
 * would stop at the same line), `gone` for a late or repeated event of a generation overwritten or
 * deleted since (nothing to read, and trying again would not change that: events are retried for a
 * day). Anything else throws, for the event to be delivered again.
 */
export async function readOrStop<T>(
  read: () => Promise<T>,
): Promise<T | { stopped: BucketCapError } | { gone: true }> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof BucketCapError) return { stopped: err };
    if ((err as { code?: unknown }).code === 404) return { gone: true };
    throw err;
  }
}
