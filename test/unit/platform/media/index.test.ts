import { Readable } from 'node:stream';
import type { Storage } from '@google-cloud/storage';
import { describe, expect, it } from 'vitest';
import type { GenerateContentRequest } from '../../../../functions/core/jobs.js';
import { ownerPrefix } from '../../../../functions/core/owner-prefix.js';
import { createLogger } from '../../../../functions/platform/logger.js';
import {
  createMediaFetcher,
  MediaBudget,
  MediaError,
  mediaDeadlinesFor,
} from '../../../../functions/platform/media/index.js';
import { createLogCapture } from '../../../helpers/log-capture.js';
import { rejectionOf } from '../../../helpers/rejection.js';

type StoredObject =
  | { data: Buffer; contentType?: string; size?: number; gate?: Promise<void> }
  | { errorCode?: number };

/**
 * A `Storage`-like object over in-memory objects, keyed by `bucket/path`; `touched` lists every
 * object asked for. An object with a `gate` sends its first KiB, then waits for the gate.
 */
function fakeStorage(objects: Record<string, StoredObject>) {
  const touched: string[] = [];
  const storage = {
    bucket: (bucket: string) => ({
      file: (path: string) => {
        touched.push(`${bucket}/${path}`);
        const object = objects[`${bucket}/${path}`] ?? { errorCode: 404 };
        return {
          async getMetadata() {
            if (!('data' in object)) {
              const code = object.errorCode;
              const message =
                code === 404
                  ? 'No such object: fanout/x'
                  : code === 403
                    ? 'worker@p.iam.gserviceaccount.com does not have storage.objects.get access'
                    : 'Service unavailable';
              throw Object.assign(new Error(message), { code });
            }
            return [{ size: String(object.size ?? object.data.length), contentType: object.contentType }];
          },
          createReadStream() {
            if (!('data' in object)) throw new Error('no object');
            const { data, gate } = object;
            return Readable.from(
              (async function* () {
                for (let i = 0; i < data.length; i += 1024) {
                  if (i > 0 && gate) await gate;
                  yield data.subarray(i, i + 1024);
                }
              })(),
            );
          },
        };
      },
    }),
  };
  return { storage: storage as unknown as Storage, touched };
}

const errorOf = (promise: Promise<unknown>) => rejectionOf(promise, MediaError);

function gate() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const question = (): GenerateContentRequest => ({
  contents: [
    { role: 'user', parts: [{ text: 'first question' }] },
    { role: 'model', parts: [{ text: 'an answer' }] },
    { role: 'user', parts: [{ text: 'what is in this picture?' }] },
  ],
});

describe('createMediaFetcher: gs:// objects', () => {
  const { storage } = fakeStorage({
    'photos/cat.png': { data: PNG, contentType: 'image/png' },
    'photos/unknown.bin': { data: PNG, contentType: 'application/octet-stream' },
    'photos/page.html': { data: Buffer.from('<html></html>'), contentType: 'text/html; charset=utf-8' },
    'photos/typed.jpg': { data: PNG, contentType: 'image/jpeg; foo=bar' },
    'photos/big.png': { data: Buffer.alloc(5000), contentType: 'image/png' },
    'photos/liar.png': { data: Buffer.alloc(5000), contentType: 'image/png', size: 10 },
    'photos/flaky.png': { errorCode: 503 },
  });
  const fetcher = createMediaFetcher({ storage, gcsAllowed: ['gs://photos/'], maxBytes: 4096 });

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

  it("takes the object's content type without its parameters", async () => {
    const attached = await fetcher.attach(question(), [{ gcsUri: 'gs://photos/typed.jpg' }]);

    expect(attached.contents[2]?.parts[1]?.inlineData?.mimeType).toBe('image/jpeg');
  });

  it('refuses an object over the size limit', async () => {
    const err = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://photos/big.png' }]));

    expect(err.permanent).toBe(true);
    expect(err.message).toMatch(/larger than 4096 bytes/);
  });

  it('refuses an object that holds more bytes than its metadata says', async () => {
    const err = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://photos/liar.png' }]));

    expect(err.message).toBe('gs://photos/liar.png is larger than its announced 10 bytes');
  });

  it('refuses media that add up to more than the limit', async () => {
    const small = createMediaFetcher({ storage, gcsAllowed: ['gs://photos/'], maxBytes: PNG.length * 2 + 1 });

    const err = await errorOf(
      small.attach(question(), [
        { gcsUri: 'gs://photos/cat.png' },
        { gcsUri: 'gs://photos/cat.png' },
        { gcsUri: 'gs://photos/cat.png' },
      ]),
    );

    expect(err.message).toMatch(/add up to more than/);
  });

  it('treats a 503 from Cloud Storage as worth another attempt', async () => {
    const err = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://photos/flaky.png' }]));

    expect(err.permanent).toBe(false);
  });

  describe("types: the object's own type wins", () => {
    it('refuses a type Gemini does not take, whatever was declared', async () => {
      const html = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://photos/page.html' }]));
      const binary = await errorOf(
        fetcher.attach(question(), [{ gcsUri: 'gs://photos/unknown.bin', mimeType: 'image/webp' }]),
      );
      const asText = await errorOf(
        fetcher.attach(question(), [{ gcsUri: 'gs://photos/unknown.bin', mimeType: 'text/plain' }]),
      );

      expect(html.permanent).toBe(true);
      expect(html.message).toContain('"text/html"');
      expect(binary.message).toMatch(/"application\/octet-stream", which Gemini does not take as media/);
      expect(asText.message).toMatch(/own type counts, not a declared one/);
    });

    it('refuses a declared type that disagrees with the stored one', async () => {
      const err = await errorOf(
        fetcher.attach(question(), [{ gcsUri: 'gs://photos/cat.png', mimeType: 'text/plain' }]),
      );

      expect(err.permanent).toBe(true);
      expect(err.message).toBe(
        'gs://photos/cat.png has type "image/png" but was declared "text/plain": the medium\'s own type counts, so a declared mimeType must match it or be left out',
      );
    });

    it('takes a declared type that agrees, in another spelling or case', async () => {
      const attached = await fetcher.attach(question(), [
        { gcsUri: 'gs://photos/typed.jpg', mimeType: 'image/jpg' },
        { gcsUri: 'gs://photos/cat.png', mimeType: 'IMAGE/PNG' },
      ]);

      const types = attached.contents[2]?.parts.slice(1).map((p) => p.inlineData?.mimeType);
      expect(types).toEqual(['image/jpeg', 'image/png']);
    });
  });
});

describe('createMediaFetcher: which gs:// objects may be read', () => {
  const objects = {
    'fanout/media/cat.png': { data: PNG, contentType: 'image/png' },
    'fanout/inbox/alice.jsonl': { data: Buffer.from('{"prompt":"x"}\n'), contentType: 'text/plain' },
    'fanout/results/alice.jsonl': { data: Buffer.from('{"key":"a"}\n'), contentType: 'text/plain' },
    'fanout/staging/part-0.jsonl': { data: Buffer.from('{"key":"a"}\n'), contentType: 'text/plain' },
    'fanout/media/denied.png': { errorCode: 403 },
  };
  const setup = () => {
    const { storage, touched } = fakeStorage(objects);
    const fetcher = createMediaFetcher({
      storage,
      gcsAllowed: ['gs://fanout/media/', 'gs://shared/examples/'],
    });
    return { fetcher, touched };
  };

  it('reads an object under an allowed prefix', async () => {
    const { fetcher } = setup();

    const attached = await fetcher.attach(question(), [{ gcsUri: 'gs://fanout/media/cat.png' }]);

    expect(attached.contents[2]?.parts[1]?.inlineData?.mimeType).toBe('image/png');
  });

  it.each([
    'gs://fanout/inbox/alice.jsonl',
    'gs://fanout/results/alice.jsonl',
    'gs://fanout/staging/part-0.jsonl',
    'gs://fanout/mediax/cat.png',
    'gs://fanout-other/media/cat.png',
    'gs://other/media/cat.png',
  ])('refuses %s without reading it, naming only that URI', async (gcsUri) => {
    const { fetcher, touched } = setup();

    const err = await errorOf(fetcher.attach(question(), [{ gcsUri, mimeType: 'text/plain' }]));

    expect(err.permanent).toBe(true);
    // The words a missing object gets: a refusal tells nothing about what is there.
    expect(err.message).toBe(`${gcsUri} was not found or is not allowed`);
    expect(err.message).not.toContain('gs://fanout/media/');
    expect(touched).toEqual([]);
  });

  it.each([
    ['gs://fanout/media/../inbox/alice.jsonl', 'a "." or ".." segment'],
    ['gs://fanout/media/./cat.png', 'a "." or ".." segment'],
    ['gs://fanout/media/%2e%2e/inbox/alice.jsonl', 'a percent-escape'],
    ['gs://fanout/media/%2E%2E%2Finbox%2Falice.jsonl', 'a percent-escape'],
    ['gs://fanout/media//cat.png', 'an empty path segment'],
    ['gs://fanout/media/\\..\\inbox\\alice.jsonl', 'a backslash'],
    ['gs://fanout/media/cat.png\u0000', 'a control character'],
    ['gs://fanout/media/cat\n.png', 'a control character'],
    ['gs://fanout/media/cat\u007f.png', 'a control character'],
  ])('refuses the path trick %j without reading it', async (gcsUri, trick) => {
    const { fetcher, touched } = setup();

    const err = await errorOf(fetcher.attach(question(), [{ gcsUri }]));

    expect(err.permanent).toBe(true);
    expect(err.message).toContain(`its object name has ${trick}`);
    expect(touched).toEqual([]);
  });

  it('says "not found or not allowed" for a 403 or a 404, and leaves Cloud Storage\'s words to the log', async () => {
    const { fetcher } = setup();
    const capture = createLogCapture();
    const logger = createLogger({ destination: capture.stream });

    const denied = await errorOf(
      fetcher.attach(question(), [{ gcsUri: 'gs://fanout/media/denied.png' }], { logger }),
    );
    const missing = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://fanout/media/gone.png' }]));

    expect(denied.permanent).toBe(true);
    expect(denied.message).toBe('gs://fanout/media/denied.png was not found or is not allowed');
    expect(missing.message).toBe('gs://fanout/media/gone.png was not found or is not allowed');
    expect(capture.events('media.failed')[0]).toMatchObject({
      media: 'gs://fanout/media/denied.png',
      permanent: true,
      detail: expect.stringContaining('does not have storage.objects.get access'),
    });
  });
});

describe("createMediaFetcher: a job reads its owner's media and the shared samples, nothing of another owner's", () => {
  const alice = ownerPrefix('alice@example.com');
  const bob = ownerPrefix('bob@example.com');
  const setup = () => {
    const { storage, touched } = fakeStorage({
      [`fanout/media/${alice}/cat.png`]: { data: PNG, contentType: 'image/png' },
      [`fanout/media/${bob}/cat.png`]: { data: PNG, contentType: 'image/png' },
      'fanout/media/samples/red.png': { data: PNG, contentType: 'image/png' },
    });
    const fetcher = createMediaFetcher({
      storage,
      gcsAllowed: ['gs://fanout/media/'],
      gcsShared: ['gs://fanout/media/samples/'],
    });
    return { fetcher, touched };
  };

  it("reads the owner's own folder and the shared samples", async () => {
    const { fetcher } = setup();

    const attached = await fetcher.attach(
      question(),
      [{ gcsUri: `gs://fanout/media/${alice}/cat.png` }, { gcsUri: 'gs://fanout/media/samples/red.png' }],
      { owner: 'alice@example.com' },
    );

    expect(attached.contents[2]?.parts.slice(1).map((p) => p.inlineData?.mimeType)).toEqual([
      'image/png',
      'image/png',
    ]);
  });

  it("refuses another owner's object without reading it, in the words a missing one of its own gets", async () => {
    const { fetcher, touched } = setup();
    const theirs = `gs://fanout/media/${bob}/cat.png`;
    const none = `gs://fanout/media/${bob}/none.png`;
    const ownMissing = `gs://fanout/media/${alice}/none.png`;

    const [existing, missing, own] = (await Promise.all(
      [theirs, none, ownMissing].map((gcsUri) =>
        errorOf(fetcher.attach(question(), [{ gcsUri }], { owner: 'alice@example.com' })),
      ),
    )) as [MediaError, MediaError, MediaError];

    expect(existing.message.replace(theirs, 'URI')).toBe(missing.message.replace(none, 'URI'));
    expect(existing.message.replace(theirs, 'URI')).toBe(own.message.replace(ownMissing, 'URI'));
    expect(existing.permanent && missing.permanent && own.permanent).toBe(true);
    expect(touched).toEqual([`fanout/media/${alice}/none.png`]);
  });

  it('lets a job without an owner (a file straight under inbox/) read the whole media root', async () => {
    const { fetcher } = setup();

    const attached = await fetcher.attach(question(), [{ gcsUri: `gs://fanout/media/${bob}/cat.png` }]);

    expect(attached.contents[2]?.parts[1]?.inlineData?.mimeType).toBe('image/png');
  });
});

describe('createMediaFetcher: the instance media budget', () => {
  const setup = (budget: MediaBudget) => {
    const hold = gate();
    const { storage } = fakeStorage({
      'photos/slow.png': { data: Buffer.alloc(3000, 1), contentType: 'image/png', gate: hold.promise },
      'photos/other.png': { data: Buffer.alloc(3000, 2), contentType: 'image/png' },
    });
    const fetcher = createMediaFetcher({ storage, gcsAllowed: ['gs://photos/'], maxBytes: 4096, budget });
    return { fetcher, hold };
  };

  it('makes a fetch wait while other items hold the budget, then lets it through', async () => {
    const budget = new MediaBudget(4000, 5000);
    const { fetcher, hold } = setup(budget);

    const first = fetcher.attach(question(), [{ gcsUri: 'gs://photos/slow.png' }]);
    await expect.poll(() => budget.heldBytes).toBe(3000);
    const second = fetcher.attach(question(), [{ gcsUri: 'gs://photos/other.png' }]);
    await expect.poll(() => budget.waiting).toBe(1);
    hold.open();
    const [a, b] = await Promise.all([first, second]);

    expect(a.contents[2]?.parts).toHaveLength(2);
    expect(b.contents[2]?.parts).toHaveLength(2);
    expect(budget.heldBytes).toBe(0);
  });

  it('fails a fetch that finds no room in time with a retryable error', async () => {
    const budget = new MediaBudget(4000, 50);
    const { fetcher, hold } = setup(budget);

    const first = fetcher.attach(question(), [{ gcsUri: 'gs://photos/slow.png' }]);
    await expect.poll(() => budget.heldBytes).toBe(3000);
    const err = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://photos/other.png' }]));
    hold.open();
    await first;

    expect(err.permanent).toBe(false);
    expect(err.message).toBe('the worker is busy with other media; the item will be tried again');
    expect(budget.heldBytes).toBe(0);
  });

  it('gives the bytes back when a fetch fails', async () => {
    const budget = new MediaBudget(4000, 50);
    const { storage } = fakeStorage({
      'photos/liar.png': { data: Buffer.alloc(3000), contentType: 'image/png', size: 10 },
    });
    const fetcher = createMediaFetcher({ storage, gcsAllowed: ['gs://photos/'], maxBytes: 4096, budget });

    await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://photos/liar.png' }]));

    expect(budget.heldBytes).toBe(0);
  });
});

describe('createMediaFetcher: media too big to send inline', () => {
  type Upload = { bytes: Buffer; mimeType: string };
  /** An uploader that reads its source to the end and records what it read. */
  function fakeUploader() {
    const uploads: Upload[] = [];
    const uploader = {
      async upload(source: AsyncIterable<Uint8Array>, { mimeType }: { mimeType: string }) {
        const pieces: Buffer[] = [];
        for await (const piece of source) pieces.push(Buffer.from(piece));
        uploads.push({ bytes: Buffer.concat(pieces), mimeType });
        return { uri: 'https://files.example/v1beta/files/abc', mimeType };
      },
    };
    return { uploader, uploads };
  }

  it('streams it to the Files API and refers to it by fileData', async () => {
    const big = Buffer.alloc(10_000, 7);
    const { storage } = fakeStorage({ 'videos/clip.mp4': { data: big, contentType: 'video/mp4' } });
    const { uploader, uploads } = fakeUploader();
    const fetcher = createMediaFetcher({
      storage,
      gcsAllowed: ['gs://videos/'],
      maxBytes: 4096,
      maxFileBytes: 20_000,
      uploader,
    });

    const request = await fetcher.attach(question(), [{ gcsUri: 'gs://videos/clip.mp4' }]);

    expect(uploads[0]?.bytes.equals(big)).toBe(true);
    expect(uploads[0]?.mimeType).toBe('video/mp4');
    expect(request.contents.at(-1)?.parts.at(-1)).toEqual({
      fileData: { mimeType: 'video/mp4', fileUri: 'https://files.example/v1beta/files/abc' },
    });
  });

  it('starts the upload before the object has been read to its end (nothing is staged)', async () => {
    // The object's bytes after its first KiB wait until the uploader has received that KiB.
    const firstSeen = gate();
    const big = Buffer.alloc(10_000, 3);
    const { storage } = fakeStorage({
      'videos/live.mp4': { data: big, contentType: 'video/mp4', gate: firstSeen.promise },
    });
    const received: Buffer[] = [];
    const uploader = {
      async upload(source: AsyncIterable<Uint8Array>, { mimeType }: { mimeType: string }) {
        for await (const piece of source) {
          received.push(Buffer.from(piece));
          firstSeen.open();
        }
        return { uri: 'https://files.example/v1beta/files/live', mimeType };
      },
    };
    const fetcher = createMediaFetcher({
      storage,
      gcsAllowed: ['gs://videos/'],
      maxBytes: 4096,
      uploader,
      deadlineMs: 2000,
    });

    const request = await fetcher.attach(question(), [{ gcsUri: 'gs://videos/live.mp4' }]);

    expect(Buffer.concat(received).equals(big)).toBe(true);
    expect(request.contents.at(-1)?.parts.at(-1)?.fileData?.fileUri).toContain('/files/live');
  });

  it('sends a medium of unknown size inline when it turns out small, and streams it when it does not', async () => {
    const { storage } = fakeStorage({
      'videos/small.mp4': { data: Buffer.alloc(3000, 1), contentType: 'video/mp4', size: 0 },
      'videos/large.mp4': { data: Buffer.alloc(9000, 2), contentType: 'video/mp4', size: 0 },
    });
    const { uploader, uploads } = fakeUploader();
    const fetcher = createMediaFetcher({ storage, gcsAllowed: ['gs://videos/'], maxBytes: 4096, uploader });

    const small = await fetcher.attach(question(), [{ gcsUri: 'gs://videos/small.mp4' }]);
    const large = await fetcher.attach(question(), [{ gcsUri: 'gs://videos/large.mp4' }]);

    expect(small.contents.at(-1)?.parts.at(-1)?.inlineData?.data).toBe(
      Buffer.alloc(3000, 1).toString('base64'),
    );
    expect(large.contents.at(-1)?.parts.at(-1)?.fileData).toBeDefined();
    expect(uploads).toHaveLength(1);
    expect(uploads[0]?.bytes.equals(Buffer.alloc(9000, 2))).toBe(true);
  });

  it('refuses what is larger than the Files API limit, before or while streaming it', async () => {
    const { storage } = fakeStorage({
      'videos/huge.mp4': { data: Buffer.alloc(30_000), contentType: 'video/mp4' },
      'videos/sneaky.mp4': { data: Buffer.alloc(30_000), contentType: 'video/mp4', size: 0 },
    });
    const { uploader } = fakeUploader();
    const fetcher = createMediaFetcher({
      storage,
      gcsAllowed: ['gs://videos/'],
      maxBytes: 4096,
      maxFileBytes: 20_000,
      uploader,
    });

    const huge = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://videos/huge.mp4' }]));
    const sneaky = await errorOf(fetcher.attach(question(), [{ gcsUri: 'gs://videos/sneaky.mp4' }]));

    expect(huge.permanent).toBe(true);
    expect(huge.message).toMatch(/larger than 20000 bytes/);
    expect(sneaky.message).toMatch(/larger than 20000 bytes/);
  });
});

describe('mediaDeadlinesFor', () => {
  it("fits the media in what the item's lease leaves after Gemini's timeout", () => {
    // The defaults: GEMINI_TIMEOUT_MS 300 s gives a 360 s lease.
    expect(mediaDeadlinesFor(360_000, 300_000)).toEqual({ itemDeadlineMs: 50_000, deadlineMs: 50_000 });
    expect(mediaDeadlinesFor(1_800_000, 300_000)).toEqual({ itemDeadlineMs: 120_000, deadlineMs: 60_000 });
    expect(mediaDeadlinesFor(60_000, 55_000)).toEqual({ itemDeadlineMs: 10_000, deadlineMs: 10_000 });
  });
});
