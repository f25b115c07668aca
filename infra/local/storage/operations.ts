/**
 * Which JSON API method a request to the emulator is, and its operation class as Cloud Storage
 * bills it (cloud.google.com/storage/pricing#operations-by-class): `storage.*.insert`, `patch`,
 * `update`, `buckets.list`, `objects.list`, `compose`, `copy`, `rewrite` are Class A; `storage.*.get`
 * is Class B; `buckets.delete` and `objects.delete` are free. Each request of a resumable upload
 * after its start (a chunk) is counted as one more Class A insert: stricter than a bill that
 * charges the upload once. The emulator's own `/_emulator/*` routes are not operations.
 */
export type OperationClass = 'A' | 'B' | 'free';

export interface StorageOperation {
  method: string;
  class: OperationClass;
}

/** Counts of operations since start: by JSON API method and by class. */
export interface StorageUsage {
  byMethod: Record<string, number>;
  classA: number;
  classB: number;
  free: number;
}

const CLASS_B = new Set(['storage.objects.get', 'storage.buckets.get']);
const FREE = new Set(['storage.objects.delete', 'storage.buckets.delete', 'storage.uploads.cancel']);

function classOf(method: string): OperationClass {
  if (CLASS_B.has(method)) return 'B';
  if (FREE.has(method)) return 'free';
  return 'A';
}

function objectMethod(httpMethod: string, rest: string[]): string {
  if (rest.length === 0) return 'storage.objects.list';
  if (rest[1] === 'compose') return 'storage.objects.compose';
  if (rest[1] === 'copyTo') return 'storage.objects.copy';
  if (rest[1] === 'rewriteTo') return 'storage.objects.rewrite';
  if (httpMethod === 'DELETE') return 'storage.objects.delete';
  if (httpMethod === 'PATCH') return 'storage.objects.patch';
  if (httpMethod === 'PUT') return 'storage.objects.update';
  return 'storage.objects.get';
}

function bucketMethod(httpMethod: string, hasName: boolean): string {
  if (!hasName) return httpMethod === 'POST' ? 'storage.buckets.insert' : 'storage.buckets.list';
  if (httpMethod === 'DELETE') return 'storage.buckets.delete';
  if (httpMethod === 'PATCH' || httpMethod === 'PUT') return 'storage.buckets.patch';
  return 'storage.buckets.get';
}

/** The operation a request is, or `undefined` for the emulator's own routes and unknown paths. */
export function storageOperation(httpMethod: string, rawUrl: string): StorageOperation | undefined {
  const url = new URL(rawUrl, 'http://emulator.invalid');
  let path = url.pathname;
  let upload = false;
  for (const prefix of ['/upload/storage/v1/', '/download/storage/v1/', '/storage/v1/']) {
    if (path.startsWith(prefix)) {
      upload = prefix === '/upload/storage/v1/';
      path = path.slice(prefix.length - 1);
      break;
    }
  }
  const segments = path.split('/').slice(1);
  if (segments[0] !== 'b') return undefined;
  let method: string;
  if (upload) {
    const chunk = url.searchParams.has('upload_id');
    method =
      chunk && httpMethod === 'DELETE'
        ? 'storage.uploads.cancel'
        : chunk
          ? 'storage.objects.insert (resumable request)'
          : 'storage.objects.insert';
  } else if (segments.length <= 2) {
    method = bucketMethod(httpMethod, Boolean(segments[1]));
  } else {
    method = objectMethod(httpMethod, segments.slice(3));
  }
  return { method, class: method.startsWith('storage.objects.insert') ? 'A' : classOf(method) };
}

/** A counter of operations; `count` takes each request as it arrives. */
export function createStorageUsage(): {
  count(httpMethod: string, url: string): void;
  usage(): StorageUsage;
} {
  const byMethod: Record<string, number> = {};
  const totals = { classA: 0, classB: 0, free: 0 };
  return {
    count(httpMethod, url) {
      const op = storageOperation(httpMethod, url);
      if (!op) return;
      byMethod[op.method] = (byMethod[op.method] ?? 0) + 1;
      if (op.class === 'A') totals.classA += 1;
      else if (op.class === 'B') totals.classB += 1;
      else totals.free += 1;
    },
    usage: () => ({ byMethod: { ...byMethod }, ...totals }),
  };
}
