/**
 * Owner prefixes, pure: the one folder name per owner identity under which that owner's objects live
 * in the bucket (`media/{prefix}/`, `inbox/{prefix}/`, `results/{prefix}/`), and which `gs://`
 * locations a job of an owner may read media from.
 *
 * The prefix is the first 32 hexadecimal digits (128 bits) of SHA-256 of the identity as the jobs API
 * knows it (a lowercased email, or a token's `sub`). So it is stable (the same identity always gets
 * the same prefix, on every instance and in Terraform, which computes `substr(sha256(id), 0, 32)`),
 * path-safe (lowercase hex: no `/`, `.`, `%` or anything a shell or a URL would read otherwise), and
 * no two owners share one: finding two identities with the same 128-bit SHA-256 prefix takes about
 * 2^64 hashes, and an identity here is one Google verified.
 */
import { createHash } from 'node:crypto';

/** How long an owner prefix is, in hexadecimal digits. */
export const OWNER_PREFIX_LENGTH = 32;

const OWNER_PREFIX = new RegExp(`^[0-9a-f]{${OWNER_PREFIX_LENGTH}}$`);

/** The owner prefix of an identity (see the module comment). */
export function ownerPrefix(ownerId: string): string {
  return createHash('sha256').update(ownerId, 'utf8').digest('hex').slice(0, OWNER_PREFIX_LENGTH);
}

/** True when a path segment has the form of an owner prefix (whether or not it belongs to anyone). */
export function looksLikeOwnerPrefix(segment: string): boolean {
  return OWNER_PREFIX.test(segment);
}

/**
 * Where `gs://` media may come from: `roots` hold one folder per owner (`{root}{prefix}/`), `shared`
 * are read-only prefixes every job may read (the samples).
 */
export interface MediaAccess {
  /** `gs://bucket/prefix/` entries (MEDIA_GCS_ALLOWED); an owner reads only its own folder in each. */
  roots: readonly string[];
  /** `gs://bucket/prefix/` entries (MEDIA_GCS_SHARED) every owner may read. */
  shared: readonly string[];
}

/**
 * The `gs://bucket/prefix/` locations a job may read media from: its owner's folder in each root and
 * the shared prefixes. A job without an owner (a file dropped straight under `inbox/` by someone with
 * rights on the whole bucket, who can read every root anyway) reads the whole roots.
 */
export function mediaLocationsFor(access: MediaAccess, owner: string | undefined): string[] {
  const own =
    owner === undefined ? [...access.roots] : access.roots.map((root) => `${root}${ownerPrefix(owner)}/`);
  return [...new Set([...own, ...access.shared])];
}

/** The project bucket's own prefixes: never media, whoever asks (other callers' input and output). */
export const INTERNAL_PREFIXES = ['inbox/', 'staging/', 'answers/', 'results/'] as const;

/**
 * What is wrong with a media configuration of the project bucket `bucket`, one message per entry
 * (empty when nothing is): a bucket's root, the project bucket's internal prefixes (or anything
 * inside them), and a shared prefix that holds a root (it would open every owner's folder) are
 * refused.
 */
export function mediaAccessProblems(bucket: string, access: MediaAccess): string[] {
  const problems: string[] = [];
  const check = (variable: string, entry: string) => {
    const m = /^gs:\/\/([^/]+)\/(.*)$/.exec(entry);
    if (!m) return;
    const [, entryBucket, path] = m as unknown as [string, string, string];
    if (path === '') {
      problems.push(
        `${variable}: ${entry} is a whole bucket; name a folder such as gs://${entryBucket}/media/`,
      );
      return;
    }
    const internal = INTERNAL_PREFIXES.find((p) => entryBucket === bucket && path.startsWith(p));
    if (internal) {
      problems.push(
        `${variable}: ${entry} is inside ${internal}, where the service keeps callers' files; media go under gs://${bucket}/media/`,
      );
    }
  };
  for (const root of access.roots) check('MEDIA_GCS_ALLOWED', root);
  for (const shared of access.shared) {
    check('MEDIA_GCS_SHARED', shared);
    const opened = access.roots.find((root) => root.startsWith(shared));
    if (opened) {
      problems.push(
        `MEDIA_GCS_SHARED: ${shared} holds the media root ${opened}, so every owner could read every other's media; share a folder inside it such as ${opened}samples/`,
      );
    }
  }
  return problems;
}
