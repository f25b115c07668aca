import type { BucketRecord, ObjectRecord } from './store.js';

/** Matches the project number the real API reports; any stable digits do for an emulator. */
const PROJECT_NUMBER = '123456789012';

function etag(...parts: (string | number)[]): string {
  return Buffer.from(parts.join('/')).toString('base64');
}

/**
 * The `storage#object` resource of the JSON API. The same JSON is the `data` of the
 * Eventarc CloudEvents (StorageObjectData), where int64 fields are strings too.
 * `baseUrl` is where the emulator is reachable, so links work against it.
 */
export function objectResource(record: ObjectRecord, baseUrl: string): Record<string, unknown> {
  const encoded = encodeURIComponent(record.name);
  return {
    kind: 'storage#object',
    id: `${record.bucket}/${record.name}/${record.generation}`,
    selfLink: `${baseUrl}/storage/v1/b/${record.bucket}/o/${encoded}`,
    mediaLink: `${baseUrl}/download/storage/v1/b/${record.bucket}/o/${encoded}?generation=${record.generation}&alt=media`,
    name: record.name,
    bucket: record.bucket,
    generation: record.generation,
    metageneration: String(record.metageneration),
    contentType: record.contentType ?? 'application/octet-stream',
    ...optional(record, [
      'contentEncoding',
      'contentDisposition',
      'contentLanguage',
      'cacheControl',
      'customTime',
    ]),
    storageClass: 'STANDARD',
    size: String(record.size),
    ...(record.md5Hash !== undefined ? { md5Hash: record.md5Hash } : {}),
    crc32c: record.crc32c,
    ...(record.componentCount !== undefined ? { componentCount: record.componentCount } : {}),
    etag: etag(record.generation, record.metageneration),
    timeCreated: record.timeCreated,
    updated: record.updated,
    timeStorageClassUpdated: record.timeCreated,
    timeFinalized: record.timeCreated,
    ...(record.metadata ? { metadata: record.metadata } : {}),
  };
}

function optional(record: ObjectRecord, fields: readonly (keyof ObjectRecord)[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of fields) if (record[field] !== undefined) out[field] = record[field];
  return out;
}

/** The `storage#bucket` resource. */
export function bucketResource(bucket: BucketRecord, baseUrl: string): Record<string, unknown> {
  return {
    kind: 'storage#bucket',
    selfLink: `${baseUrl}/storage/v1/b/${bucket.name}`,
    id: bucket.name,
    name: bucket.name,
    projectNumber: PROJECT_NUMBER,
    metageneration: String(bucket.metageneration),
    location: bucket.location,
    storageClass: bucket.storageClass,
    etag: etag(bucket.name, bucket.metageneration),
    timeCreated: bucket.timeCreated,
    updated: bucket.updated,
    locationType: 'multi-region',
    rpo: 'DEFAULT',
    iamConfiguration: {
      bucketPolicyOnly: { enabled: true },
      uniformBucketLevelAccess: { enabled: true },
      publicAccessPrevention: 'enforced',
    },
    ...(bucket.labels ? { labels: bucket.labels } : {}),
  };
}
