import { describe, expect, test } from 'vitest';
import { createStorageUsage, storageOperation } from '../../../../infra/local/storage/operations.js';

describe('storageOperation: a JSON API request and its billing class', () => {
  test.each([
    ['POST', '/upload/storage/v1/b/bk/o?uploadType=media&name=a', 'storage.objects.insert', 'A'],
    ['POST', '/upload/storage/v1/b/bk/o?uploadType=resumable', 'storage.objects.insert', 'A'],
    [
      'PUT',
      '/upload/storage/v1/b/bk/o?uploadType=resumable&upload_id=x',
      'storage.objects.insert (resumable request)',
      'A',
    ],
    [
      'DELETE',
      '/upload/storage/v1/b/bk/o?uploadType=resumable&upload_id=x',
      'storage.uploads.cancel',
      'free',
    ],
    ['GET', '/b/bk/o?prefix=results/', 'storage.objects.list', 'A'],
    ['GET', '/storage/v1/b/bk/o/a%2Fb.jsonl', 'storage.objects.get', 'B'],
    ['GET', '/download/storage/v1/b/bk/o/a?alt=media', 'storage.objects.get', 'B'],
    ['HEAD', '/b/bk/o/a', 'storage.objects.get', 'B'],
    ['PATCH', '/b/bk/o/a', 'storage.objects.patch', 'A'],
    ['DELETE', '/b/bk/o/a', 'storage.objects.delete', 'free'],
    ['POST', '/b/bk/o/a/compose', 'storage.objects.compose', 'A'],
    ['POST', '/b/bk/o/a/copyTo/b/bk2/o/c', 'storage.objects.copy', 'A'],
    ['POST', '/b/bk/o/a/rewriteTo/b/bk2/o/c', 'storage.objects.rewrite', 'A'],
    ['GET', '/b/bk', 'storage.buckets.get', 'B'],
    ['GET', '/b?project=p', 'storage.buckets.list', 'A'],
    ['POST', '/b?project=p', 'storage.buckets.insert', 'A'],
    ['DELETE', '/b/bk', 'storage.buckets.delete', 'free'],
  ])('%s %s is %s (class %s)', (method, url, name, cls) => {
    expect(storageOperation(method, url)).toEqual({ method: name, class: cls });
  });

  test("the emulator's own routes are not operations", () => {
    expect(storageOperation('GET', '/_emulator/events')).toBeUndefined();
    expect(storageOperation('GET', '/_emulator/usage')).toBeUndefined();
  });

  test('the counter adds requests up by method and by class', () => {
    const counter = createStorageUsage();
    counter.count('GET', '/b/bk/o/a');
    counter.count('GET', '/b/bk/o/a');
    counter.count('POST', '/upload/storage/v1/b/bk/o?uploadType=media&name=a');
    counter.count('DELETE', '/b/bk/o/a');
    counter.count('GET', '/_emulator/health');
    expect(counter.usage()).toEqual({
      byMethod: { 'storage.objects.get': 2, 'storage.objects.insert': 1, 'storage.objects.delete': 1 },
      classA: 1,
      classB: 2,
      free: 1,
    });
  });
});
