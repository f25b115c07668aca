import { describe, expect, it } from 'vitest';
import { entryKey } from '../../functions/api/jobs.js';
import { createJob, mediaFolder, resultsJsonl, stack, waitForJob } from '../helpers/e2e.js';
import { storageClientFor } from '../helpers/storage.js';

// The catalogue of bad media, end to end: each is one item of the same job, next to good items, and
// each must end as an error line that says what was refused in the caller's own terms (never a
// resolved address, never Cloud Storage's words), while the good items of
// the job are answered. What needs a public server (a redirect from one, a slow drip, a body bigger
// than announced) is driven by the media unit tests (test/unit/platform/media*.test.ts) against a
// local https server, since every server here is on loopback.

const MODEL = 'gemini-2.5-flash';

const BAD: Array<{
  what: string;
  media: { url?: string; gcsUri?: string; mimeType?: string };
  says: RegExp;
}> = [
  { what: 'loopback', media: { url: 'https://127.0.0.1/a.png' }, says: /not a public address/ },
  { what: 'loopback by name', media: { url: 'https://localhost/a.png' }, says: /not a public address/ },
  { what: 'loopback as a decimal', media: { url: 'https://2130706433/a.png' }, says: /not a public address/ },
  { what: 'loopback in hex', media: { url: 'https://0x7f.0.0.1/a.png' }, says: /not a public address/ },
  { what: 'loopback in octal', media: { url: 'https://0177.0.0.1/a.png' }, says: /not a public address/ },
  {
    what: 'the metadata server',
    media: { url: 'https://169.254.169.254/computeMetadata/v1/' },
    says: /not a public address/,
  },
  { what: 'a private range', media: { url: 'https://10.1.2.3/a.png' }, says: /not a public address/ },
  {
    what: 'another private range',
    media: { url: 'https://192.168.0.1/a.png' },
    says: /not a public address/,
  },
  { what: 'IPv6 loopback', media: { url: 'https://[::1]/a.png' }, says: /not a public address/ },
  {
    what: 'IPv4-mapped IPv6',
    media: { url: 'https://[::ffff:127.0.0.1]/a.png' },
    says: /not a public address/,
  },
  { what: 'IPv4-compatible IPv6', media: { url: 'https://[::7f00:1]/a.png' }, says: /not a public address/ },
  {
    what: 'NAT64 of loopback',
    media: { url: 'https://[64:ff9b::7f00:1]/a.png' },
    says: /not a public address/,
  },
  { what: '6to4 of loopback', media: { url: 'https://[2002:7f00:1::]/a.png' }, says: /not a public address/ },
  { what: 'IPv6 unique local', media: { url: 'https://[fd00::1]/a.png' }, says: /not a public address/ },
  { what: 'IPv6 link local', media: { url: 'https://[fe80::1]/a.png' }, says: /not a public address/ },
  { what: 'IPv6 site local', media: { url: 'https://[fec0::1]/a.png' }, says: /not a public address/ },
  {
    what: 'a name that does not resolve',
    media: { url: 'https://no-such-host.invalid/a.png' },
    says: /did not resolve/,
  },
  {
    what: 'a gs:// object that is not there',
    media: { gcsUri: `gs://fanout-e2e-fanout/${mediaFolder()}none.png` },
    says: /not found or is not allowed/,
  },
  {
    what: 'a text object declared an image',
    media: { gcsUri: `gs://fanout-e2e-fanout/${mediaFolder()}hostile/notes.txt`, mimeType: 'image/png' },
    says: /type/,
  },
];

describe('hostile media', () => {
  it("fails each bad medium with a message in the caller's own terms, and answers the good items of the job", async () => {
    // Arrange: a text object that must not pass as an image.
    const s = stack();
    await storageClientFor(s.storageEmulatorHost, s.projectId)
      .bucket(s.bucket)
      .file(`${mediaFolder()}hostile/notes.txt`)
      .save('internal notes', { contentType: 'text/plain' });
    const requests = [
      { key: 'good-1', prompt: 'a good item' },
      ...BAD.map((b, n) => ({ key: `bad-${n}`, prompt: 'what is in this?', media: [b.media] })),
      { key: 'good-2', prompt: 'another good item' },
    ];

    // Act
    const id = await createJob({ model: MODEL, requests });
    const job = await waitForJob(id, 120_000);
    const lines = await resultsJsonl(id);

    // Assert
    expect(job.counts).toMatchObject({ total: BAD.length + 2, succeeded: 2, failed: BAD.length, pending: 0 });
    for (const [n, bad] of BAD.entries()) {
      const line = lines.find((l) => entryKey(l) === `bad-${n}`) as {
        error?: { code: number; message: string };
      };
      expect(line.error?.message, bad.what).toMatch(bad.says);
      // What is left once the caller's own URL or URI is taken out: no address, no internal words.
      const rest = (line.error?.message ?? '').replace(bad.media.url ?? bad.media.gcsUri ?? '', '');
      expect(rest, bad.what).not.toMatch(
        /\d+\.\d+\.\d+\.\d+|\[?[0-9a-f]*::[0-9a-f:]*\]?|Cloud Storage|googleapis|ENOTFOUND|EAI_|ECONN/i,
      );
    }
    expect(lines.filter((l) => entryKey(l).startsWith('good')).every((l) => 'response' in l)).toBe(true);
  });
});
