import { z } from 'zod';
import { ownerPrefix } from '../core/owner-prefix.js';
import { emailList } from './env-fields.js';

/**
 * The bucket part of the environment, read by config.ts with everything else: where `gs://` media
 * may come from, whose files under `inbox/` become jobs, and the caps on a bucket file.
 */

/** Comma-separated `gs://bucket/prefix/` entries; undefined when unset. */
const gcsPrefixList = z
  .string()
  .optional()
  .transform((v) =>
    v === undefined
      ? undefined
      : v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
  )
  .pipe(
    z
      .array(
        z
          .string()
          .regex(
            /^gs:\/\/[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]\/(?:[^\s,]*\/)?$/,
            'expected gs://bucket/prefix/ entries',
          ),
      )
      .optional(),
  );

export const bucketEnv = {
  /**
   * Where `gs://` media may come from: comma-separated `gs://bucket/prefix` entries; by default the
   * fanout bucket's `media/` prefix only (never inbox/, staging/ or results/, other callers' data).
   */
  MEDIA_GCS_ALLOWED: gcsPrefixList,
  /**
   * Read-only `gs://bucket/prefix/` entries every caller may take media from (the samples); by
   * default the fanout bucket's `media/samples/`.
   */
  MEDIA_GCS_SHARED: gcsPrefixList,
  /**
   * Bucket owners: comma-separated identities (emails) whose files under `inbox/{owner prefix}/`
   * become their jobs (core/owner-prefix.ts derives each prefix).
   */
  FANOUT_BUCKET_OWNERS: emailList,
  /** A bucket file may have at most this many lines; reading stops at the next (summary says so). */
  BUCKET_MAX_LINES: z.coerce.number().int().min(1).max(100_000_000).default(1_000_000),
  /** A bucket file may inflate to at most this many bytes (the Batch API takes 2 GB a file). */
  BUCKET_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 ** 3)
    .default(2 * 1024 ** 3),
};

type BucketEnv = z.output<z.ZodObject<typeof bucketEnv>>;

/** The media roots and shared prefixes of a deployment whose bucket is `bucket`: the fanout bucket's by default. */
export function mediaFrom(e: BucketEnv, bucket: string): { roots: string[]; shared: string[] } {
  return {
    roots: e.MEDIA_GCS_ALLOWED ?? [`gs://${bucket}/media/`],
    shared: e.MEDIA_GCS_SHARED ?? [`gs://${bucket}/media/samples/`],
  };
}

/** Bucket owners by their owner prefix, and the caps on a bucket file. */
export function bucketFrom(e: BucketEnv): {
  bucketOwners: Record<string, string>;
  bucketCaps: { maxLines: number; maxBytes: number };
} {
  return {
    bucketOwners: Object.fromEntries(e.FANOUT_BUCKET_OWNERS.map((id) => [ownerPrefix(id), id])),
    bucketCaps: { maxLines: e.BUCKET_MAX_LINES, maxBytes: e.BUCKET_MAX_BYTES },
  };
}
