import type { LookupAddress, lookup } from 'node:dns';
import { Readable } from 'node:stream';
import type { Storage } from '@google-cloud/storage';
import { describe, expect, it } from 'vitest';
import type { GenerateContentRequest } from '../../../functions/core/jobs.js';
import {
  createMediaFetcher,
  guardedLookup,
  isPublicAddress,
  MediaError,
} from '../../../functions/platform/media.js';

type StoredObject = { data: Buffer; contentType?: string; size?: number } | { errorCode?: number };

/** A `Storage`-like object over in-memory objects, keyed by `bucket/path`. */
function fakeStorage(objects: Record<string, StoredObject>): Storage {
  const storage = {
    bucket: (bucket: string) => ({
      file: (path: string) => {
        const object = objects[`${bucket}/${path}`] ?? { errorCode: 404 };
        return {
          async getMetadata() {
            if (!('data' in object)) {
              const code = object.errorCode;
              throw Object.assign(new Error(code === 404 ? 'No such object' : 'Service unavailable'), {
                code,
              });
            }
            return [{ size: String(object.size ?? object.data.length), contentType: object.contentType }];
          },
          createReadStream() {
            if (!('data' in object)) throw new Error('no object');
            const chunks: Buffer[] = [];
            for (let i = 0; i < object.data.length; i += 1024) chunks.push(object.data.subarray(i, i + 1024));
            return Readable.from(chunks);
          },
        };
      },
    }),
  };
  return storage as unknown as Storage;
}

/** A DNS lookup that answers from a table (`all: true` form only, as guardedLookup asks). */
function fakeLookup(table: Record<string, LookupAddress[]>): typeof lookup {
  const fn = (
    hostname: string,
    _options: object,
    callback: (err: Error | null, a?: LookupAddress[]) => void,
  ) => {
    const answer = table[hostname];
    if (!answer)
      return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
    callback(null, answer);
  };
  return fn as unknown as typeof lookup;
}

async function errorOf(promise: Promise<unknown>): Promise<MediaError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof MediaError) return err;
    throw err;
  }
  throw new Error('expected a MediaError');
}

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const question = (): GenerateContentRequest => ({
  contents: [
    { role: 'user', parts: [{ text: 'first question' }] },
    { role: 'model', parts: [{ text: 'an answer' }] },
    { role: 'user', parts: [{ text: 'what is in this picture?' }] },
  ],
});

describe('isPublicAddress', () => {
  it.each([
    '127.0.0.1',
    '127.255.0.9',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:169.254.169.254',
  ])('refuses %s', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(['8.8.8.8', '172.32.0.1', '2001:4860:4860::8888', '2606:4700:4700::1111'])(
    'allows the public address %s',
    (address) => {
      expect(isPublicAddress(address)).toBe(true);
    },
  );

  it('refuses things that are not addresses', () => {
    expect(isPublicAddress('example.com')).toBe(false);
    expect(isPublicAddress('')).toBe(false);
  });
});

describe('guardedLookup', () => {
  const base = fakeLookup({
    'internal.example': [{ address: '10.0.0.5', family: 4 }],
    'metadata.example': [{ address: '169.254.169.254', family: 4 }],
    'mixed.example': [
      { address: '93.184.216.34', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ],
    'v4.example': [{ address: '93.184.216.34', family: 4 }],
    'v6.example': [{ address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 }],
  });
  const guarded = guardedLookup(base);

  const resolveAll = (host: string) =>
    new Promise<LookupAddress[]>((resolve, reject) =>
      guarded(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
    );
  const resolveOne = (host: string) =>
    new Promise<{ address: string; family: number }>((resolve, reject) =>
      guarded(host, {}, (err, address, family) => (err ? reject(err) : resolve({ address, family }))),
    );

  it('refuses a name that resolves to a private address, in both forms', async () => {
    for (const host of ['internal.example', 'metadata.example', 'mixed.example']) {
      const all = await errorOf(resolveAll(host));
      const one = await errorOf(resolveOne(host));

      expect(all.message).toContain(host);
      expect(all.permanent).toBe(true);
      expect(one.message).toMatch(/is not public/);
    }
  });

  it('passes a public IPv6 address, in both forms', async () => {
    await expect(resolveAll('v6.example')).resolves.toEqual([
      { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
    ]);
    await expect(resolveOne('v6.example')).resolves.toEqual({
      address: '2606:2800:220:1:248:1893:25c8:1946',
      family: 6,
    });
  });

  it('passes a public IPv4 address, in both forms', async () => {
    await expect(resolveAll('v4.example')).resolves.toEqual([{ address: '93.184.216.34', family: 4 }]);
    await expect(resolveOne('v4.example')).resolves.toEqual({ address: '93.184.216.34', family: 4 });
  });

  it("passes the base lookup's own errors through", async () => {
    await expect(resolveAll('nowhere.example')).rejects.toThrow(/ENOTFOUND/);
  });
});

describe('createMediaFetcher: URLs', () => {
  const fetcher = createMediaFetcher({
    storage: fakeStorage({}),
    lookup: guardedLookup(fakeLookup({ 'internal.example': [{ address: '10.0.0.5', family: 4 }] })),
  });

  it('refuses a plain http URL', async () => {
    const err = await errorOf(fetcher.attach(question(), [{ url: 'http://example.com/cat.png' }]));

    expect(err.permanent).toBe(true);
    expect(err.message).toMatch(/only https/);
  });

  it.each([
    'https://127.0.0.1/cat.png',
    'https://10.0.0.1/cat.png',
    'https://169.254.169.254/computeMetadata/v1/',
    'https://[::1]/cat.png',
    'https://[::ffff:127.0.0.1]/cat.png',
  ])('refuses %s by its literal address, without connecting', async (url) => {
    const err = await errorOf(fetcher.attach(question(), [{ url }]));

    expect(err.permanent).toBe(true);
    expect(err.message).toMatch(/refused/);
  });

  it('refuses a name that resolves to a private address', async () => {
    const err = await errorOf(fetcher.attach(question(), [{ url: 'https://internal.example/cat.png' }]));

    expect(err.permanent).toBe(true);
    expect(err.message).toMatch(/10\.0\.0\.5 is not public/);
  });
});

describe('createMediaFetcher: gs:// objects', () => {
  const storage = fakeStorage({
    'photos/cat.png': { data: PNG, contentType: 'image/png' },
    'photos/unknown.bin': { data: PNG, contentType: 'application/octet-stream' },
    'photos/page.html': { data: Buffer.from('<html></html>'), contentType: 'text/html; charset=utf-8' },
    'photos/typed.jpg': { data: PNG, contentType: 'image/jpeg; foo=bar' },
    'photos/big.png': { data: Buffer.alloc(5000), contentType: 'image/png' },
    'photos/liar.png': { data: Buffer.alloc(5000), contentType: 'image/png', size: 10 },
    'photos/flaky.png': { errorCode: 503 },
  });
  const fetcher = createMediaFetcher({ storage, maxBytes: 4096 });

  it('appends the media as inline parts to the last user turn', async () => {
    const request = question();

    const attached = await fetcher.attach(request, [{ gcsUri: 'gs://photos/cat.png' }]);

    expect(attached.contents).toHaveLength(3);
    expect(attached.contents[2]?.parts).toEqual([
      { text: 'what is in this picture?' },
      { inlineData: { mimeType: 'image/png', data: PNG.toString('base64') } },
    ]);
    expect(attached.contents[0]?.parts).toHaveLength(1);
    expect(request.contents[2]?.parts).toHaveLength(1); // the stored request is left alone
  });

  it('keeps the order of several media', async () => {
    const attached = await fetcher.attach(question(), [
      { gcsUri: 'gs://photos/cat.png' },
      { gcsUri: 'gs://photos/typed.jpg' },
    ]);

    const types = attached.contents[2]?.parts.slice(1).map((p) => p.inlineData?.mimeType);
    expect(types).toEqual(['image/png', 'image/jpeg']);
  });

  it('adds a user turn when the request has none', async () => {
    const request: GenerateContentRequest = { contents: [{ role: 'model', parts: [{ text: 'hello' }] }] };

    const attached = await fetcher.attach(request, [{ gcsUri: 'gs://photos/cat.png' }]);

    expect(attached.contents).toHaveLength(2);
    expect(attached.contents[1]).toMatchObject({
      role: 'user',
      parts: [{ inlineData: { mimeType: 'image/png' } }],
    });
  });

  it("takes the mimeType from the ref before the object's metadata", async () => {
    const attached = await fetcher.attach(question(), [
      { gcsUri: 'gs://photos/unknown.bin', mimeType: 'image/webp' },
    ]);

    expect(attached.contents[2]?.parts[1]?.inlineData?.mimeType).toBe('image/webp');
  });

  it("takes the object's content type without its parameters when the ref has none", async () => {
    const attached = await fetcher.attach(question(), [{ gcsUri: 'gs://photos/typed.jpg' }]);

    expect(attached.contents[2]?.parts[1]?.inlineData?.mimeType).toBe('image/jpeg');
  });

  it('refuses a type Gemini does not take inline', async () => {
    const html = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://photos/page.html' }]));
    const binary = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://photos/unknown.bin' }]));

    expect(html.permanent).toBe(true);
    expect(html.message).toContain('text/html');
    expect(binary.message).toContain('application/octet-stream');
  });

  it('refuses an object over the size limit', async () => {
    const err = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://photos/big.png' }]));

    expect(err.permanent).toBe(true);
    expect(err.message).toMatch(/larger than 4096 bytes/);
  });

  it('refuses an object whose bytes exceed the limit even when its metadata says less', async () => {
    const err = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://photos/liar.png' }]));

    expect(err.message).toMatch(/larger than 4096 bytes/);
  });

  it('refuses media that add up to more than the limit', async () => {
    const small = createMediaFetcher({ storage, maxBytes: PNG.length * 2 + 1 });

    const err = await errorOf(
      small.attach(question(), [
        { gcsUri: 'gs://photos/cat.png' },
        { gcsUri: 'gs://photos/cat.png' },
        { gcsUri: 'gs://photos/cat.png' },
      ]),
    );

    expect(err.message).toMatch(/add up to more than/);
  });

  it('treats a missing object (404) as permanent', async () => {
    const err = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://photos/gone.png' }]));

    expect(err.permanent).toBe(true);
    expect(err.message).toContain('gs://photos/gone.png');
  });

  it('treats a 503 from Cloud Storage as worth another attempt', async () => {
    const err = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://photos/flaky.png' }]));

    expect(err.permanent).toBe(false);
  });
});

describe('createMediaFetcher: media too big to send inline', () => {
  const big = Buffer.alloc(10_000, 7);
  const storage = fakeStorage({
    'videos/clip.mp4': { data: big, contentType: 'video/mp4' },
    'videos/huge.mp4': { data: Buffer.alloc(30_000), contentType: 'video/mp4' },
  });
  const uploads: Array<{ bytes: Buffer; mimeType: string }> = [];
  const uploader = {
    async upload(path: string, mimeType: string) {
      const { readFile } = await import('node:fs/promises');
      uploads.push({ bytes: await readFile(path), mimeType });
      return { uri: 'https://files.example/v1beta/files/abc', mimeType };
    },
  };
  const fetcher = createMediaFetcher({ storage, maxBytes: 4096, maxFileBytes: 20_000, uploader });

  it('uploads it to the Files API and refers to it by fileData', async () => {
    const request = await fetcher.attach(question(), [{ gcsUri: 'gs://videos/clip.mp4' }]);

    expect(uploads.at(-1)?.bytes.equals(big)).toBe(true);
    expect(uploads.at(-1)?.mimeType).toBe('video/mp4');
    expect(request.contents.at(-1)?.parts.at(-1)).toEqual({
      fileData: { mimeType: 'video/mp4', fileUri: 'https://files.example/v1beta/files/abc' },
    });
  });

  it('refuses what is larger than the Files API limit', async () => {
    const err = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://videos/huge.mp4' }]));

    expect(err.permanent).toBe(true);
    expect(err.message).toMatch(/larger than 20000 bytes/);
  });
});
