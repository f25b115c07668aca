/**
 * The sample set's media, where the sample set points. `examples/prompts.jsonl` refers to its images
 * by `gs://` URI (the bucket of `npm run dev`, `fanout-local-fanout`); every local cloud puts them
 * there as it starts (startStack, so `npm run dev`, `npm start` and the test suite alike), so the
 * README's examples run as shown. They live under the shared, read-only media prefix
 * `media/samples/` (MEDIA_GCS_SHARED), which every owner may read; an object's name is that prefix
 * and the file's path under `examples/` (`media/samples/images/red.png` is
 * `examples/images/red.png`), so the sample set cannot point at a file that is not there.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';
import type { Storage } from '@google-cloud/storage';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Where the samples are in the bucket: the default shared media prefix (MEDIA_GCS_SHARED). */
export const SAMPLE_PREFIX = 'media/samples/';
/** The repository folder the sample objects are copied from. */
const SAMPLE_DIR = 'examples';

/** The sample prompt set the README runs. */
export const SAMPLE_SET = resolve(ROOT, 'examples', 'prompts.jsonl');

/** One `gs://` medium of the sample set and the repository file it is made from. */
export interface SampleMedium {
  bucket: string;
  /** The object's name: SAMPLE_PREFIX and the file's path under examples/. */
  name: string;
  file: string;
}

/**
 * Every distinct `gs://` medium the sample set refers to. Throws, naming the line, when one has no
 * file of the same path in the repository: the sample set and its images must not drift apart.
 */
export function sampleMedia(setFile: string = SAMPLE_SET, root: string = ROOT): SampleMedium[] {
  const found = new Map<string, SampleMedium>();
  readFileSync(setFile, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      const item = JSON.parse(line) as { media?: Array<{ gcsUri?: unknown }> };
      for (const { gcsUri } of item.media ?? []) {
        if (typeof gcsUri !== 'string') continue;
        const m = /^gs:\/\/([^/]+)\/(.+)$/.exec(gcsUri);
        const object = m?.[2] ?? '';
        const under = object.startsWith(SAMPLE_PREFIX) ? object.slice(SAMPLE_PREFIX.length) : undefined;
        const dir = resolve(root, SAMPLE_DIR);
        const file = under ? resolve(dir, under) : '';
        const inside = m && under && !relative(dir, file).startsWith(`..${sep}`);
        if (!m || !inside || !existsSync(file)) {
          throw new Error(
            `${setFile}:${i + 1}: ${gcsUri} is not under ${SAMPLE_PREFIX} with a file at the same path under ${SAMPLE_DIR}/`,
          );
        }
        found.set(gcsUri, { bucket: m[1]!, name: object, file });
      }
    });
  return [...found.values()];
}

/** The `gs://bucket/folder/` prefixes the media are under: what MEDIA_GCS_SHARED must let through. */
export function sampleMediaPrefixes(media: SampleMedium[]): string[] {
  return [...new Set(media.map((m) => `gs://${m.bucket}/${m.name.replace(/[^/]*$/, '')}`))];
}

/**
 * Uploads each medium unless its object already holds the same bytes (same MD5), creating a missing
 * bucket: idempotent, so starting again adds no object and no generation.
 */
export async function uploadSampleMedia(
  storage: Storage,
  media: SampleMedium[],
): Promise<{ uploaded: number; kept: number }> {
  let uploaded = 0;
  const buckets = new Set<string>();
  for (const m of media) {
    const bucket = storage.bucket(m.bucket);
    if (!buckets.has(m.bucket)) {
      const [exists] = await bucket.exists();
      if (!exists) await storage.createBucket(m.bucket);
      buckets.add(m.bucket);
    }
    const md5 = createHash('md5').update(readFileSync(m.file)).digest('base64');
    const [exists] = await bucket.file(m.name).exists();
    if (exists && (await bucket.file(m.name).getMetadata())[0].md5Hash === md5) continue;
    await bucket.upload(m.file, { destination: m.name });
    uploaded++;
  }
  return { uploaded, kept: media.length - uploaded };
}
