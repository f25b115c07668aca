import { describe, expect, it } from 'vitest';
import {
  DEFAULT_AUDIO_TOKENS,
  DEFAULT_IMAGE_TOKENS,
  DEFAULT_OTHER_MEDIA_TOKENS,
  DEFAULT_PDF_TOKENS,
  DEFAULT_VIDEO_TOKENS,
  inlineMediaTokens,
  referencedMediaTokens,
} from '../../../functions/core/media-tokens.js';

// Headers only: the estimate reads no further, so checksums and pixel data are left out.
const u16be = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u16le = (n: number) => [n & 0xff, (n >> 8) & 0xff];
const u24le = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff];
const u32be = (n: number) => [(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const u32le = (n: number) => [...u16le(n & 0xffff), ...u16le(n >>> 16)];
const ascii = (s: string) => [...Buffer.from(s, 'latin1')];
const riff = (chunk: number[]) =>
  Buffer.from([...ascii('RIFF'), ...u32le(4 + chunk.length), ...ascii('WEBP'), ...chunk]);

const png = (width: number, height: number) =>
  Buffer.from([
    ...[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    ...u32be(13),
    ...ascii('IHDR'),
    ...u32be(width),
    ...u32be(height),
    ...[8, 6, 0, 0, 0],
    ...u32be(0),
  ]);

/** SOI, a JFIF APP0, a DHT (C4, in the SOFn range but no frame), the frame header, then SOS. */
const jpeg = (width: number, height: number, frameMarker = 0xc0) =>
  Buffer.from([
    ...[0xff, 0xd8],
    ...[0xff, 0xe0, ...u16be(16), ...ascii('JFIF\0'), 1, 1, 0, 0, 1, 0, 1, 0, 0],
    ...[0xff, 0xc4, ...u16be(5), 0x00, 0x01, 0x02],
    ...[0xff, 0xff], // fill bytes before a marker
    ...[0xff, frameMarker, ...u16be(17), 8, ...u16be(height), ...u16be(width), 3],
    ...[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1],
    ...[0xff, 0xda, ...u16be(12), 3, 1, 0, 2, 0x11, 3, 0x11, 0, 0x3f, 0],
  ]);

const gif = (width: number, height: number) =>
  Buffer.from([...ascii('GIF89a'), ...u16le(width), ...u16le(height), 0xf7, 0, 0]);

const webpVp8x = (width: number, height: number) =>
  riff([...ascii('VP8X'), ...u32le(10), 0x10, 0, 0, 0, ...u24le(width - 1), ...u24le(height - 1)]);

const webpVp8 = (width: number, height: number) =>
  riff([
    ...ascii('VP8 '),
    ...u32le(10),
    0x50,
    0x2a,
    0x00,
    0x9d,
    0x01,
    0x2a,
    ...u16le(width),
    ...u16le(height),
  ]);

const webpVp8l = (width: number, height: number) =>
  riff([...ascii('VP8L'), ...u32le(5), 0x2f, ...u32le(((width - 1) | ((height - 1) << 14)) >>> 0)]);

const box = (type: string, body: number[]) => [...u32be(8 + body.length), ...ascii(type), ...body];
/** An ISO media file's ftyp and image extents: a tiled photo carries one per tile and one for the grid. */
const heic = (...extents: Array<[number, number]>) =>
  Buffer.from([
    ...box('ftyp', [...ascii('heic'), ...u32be(0), ...ascii('mif1heic')]),
    ...extents.flatMap(([w, h]) => box('ispe', [...u32be(0), ...u32be(w), ...u32be(h)])),
  ]);

/** A PDF with a catalog, a page tree and the given page objects. */
const pdf = (...pages: string[]) =>
  Buffer.from(
    [
      '%PDF-1.7',
      '1 0 obj << /Type /Catalog /Pages 2 0 R /PageLayout /SinglePage >> endobj',
      `2 0 obj << /Type /Pages /Kids [] /Count ${pages.length} >> endobj`,
      ...pages.map((page, n) => `${n + 3} 0 obj ${page} endobj`),
      '%%EOF',
    ].join('\n'),
    'latin1',
  );

const inline = (mimeType: string, bytes: Buffer) => inlineMediaTokens(mimeType, bytes.toString('base64'));

describe('inlineMediaTokens: images', () => {
  it('counts an image with both sides at most 384 px as 258 tokens', () => {
    expect(inline('image/png', png(1, 1))).toBe(258);
    expect(inline('image/png', png(384, 384))).toBe(258);
    expect(inline('image/jpeg', jpeg(300, 200))).toBe(258);
  });

  it('counts a larger image at 258 per 768×768 tile: 1600×900 is 3 × 2 tiles', () => {
    expect(inline('image/png', png(1600, 900))).toBe(1548);
    expect(inline('image/png', png(385, 10))).toBe(258);
    expect(inline('image/png', png(769, 768))).toBe(2 * 258);
    expect(inline('image/png', png(4000, 3000))).toBe(6 * 4 * 258);
  });

  it('reads the size from a PNG, a JPEG frame header, a GIF and each WebP kind, and a HEIF extent', () => {
    const formats: Array<[string, Buffer]> = [
      ['image/png', png(1600, 900)],
      ['image/jpeg', jpeg(1600, 900)],
      ['image/jpeg', jpeg(1600, 900, 0xc2)],
      ['image/gif', gif(1600, 900)],
      ['image/webp', webpVp8x(1600, 900)],
      ['image/webp', webpVp8(1600, 900)],
      ['image/webp', webpVp8l(1600, 900)],
      ['image/heic', heic([512, 512], [1600, 900], [320, 180])],
    ];

    for (const [mimeType, bytes] of formats)
      expect([mimeType, inline(mimeType, bytes)]).toEqual([mimeType, 1548]);
  });

  it('reads the header whatever image type is declared', () => {
    expect(inline('image/png', jpeg(1600, 900))).toBe(1548);
  });

  it('charges the 4-tile default for an image whose size it cannot read', () => {
    expect(DEFAULT_IMAGE_TOKENS).toBe(1032);
    expect(inline('image/heic', Buffer.from('....ftypheic'))).toBe(1032);
    expect(inline('image/bmp', Buffer.from('BM......'))).toBe(1032);
    expect(inline('image/png', png(1600, 900).subarray(0, 20))).toBe(1032);
    expect(inline('image/png', png(0, 900))).toBe(1032);
    // A JPEG whose scan starts before any frame header.
    expect(inline('image/jpeg', Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 2, 0xff, 0xd9]))).toBe(1032);
  });
});

describe('inlineMediaTokens: other types', () => {
  it('counts a PDF at 258 a page, its page objects and not its page tree', () => {
    expect(
      inline('application/pdf', pdf('<< /Type /Page /Parent 2 0 R >>', '<</Type/Page/Parent 2 0 R>>')),
    ).toBe(2 * 258);
  });

  it('does not count other names that start with /Page', () => {
    expect(
      inline('application/pdf', pdf('<< /Type /Page >>', '<< /Type /PageX >>', '<< /Type /Pagesx >>')),
    ).toBe(258);
  });

  it('charges a PDF whose pages it cannot see one page per 4 kB, and 10 pages at least', () => {
    // Pages in compressed object streams: only the catalog and the page tree are in the clear.
    const hidden = (bytes: number) => Buffer.concat([pdf(), Buffer.alloc(bytes)]);

    expect(DEFAULT_PDF_TOKENS).toBe(2580);
    expect(inline('application/pdf', hidden(0))).toBe(2580);
    expect(inline('application/pdf', hidden(200_000))).toBe(Math.ceil((pdf().length + 200_000) / 4000) * 258);
    expect(inline('application/pdf', Buffer.from('/Type /Page', 'latin1'))).toBe(2580);
  });

  it('estimates audio at 32 tokens a second of 16 kbit/s', () => {
    expect(inline('audio/mpeg', Buffer.alloc(20_000))).toBe(10 * 32);
    expect(inline('audio/wav', Buffer.alloc(1))).toBe(1);
  });

  it('estimates video at 263 tokens a second of 1 Mbit/s', () => {
    expect(inline('video/mp4', Buffer.alloc(250_000))).toBe(2 * 263);
    expect(inline('video/webm', Buffer.alloc(62_500))).toBe(Math.ceil(263 / 2));
  });

  it('counts text media at a token per 4 bytes', () => {
    expect(inline('text/plain', Buffer.from('x'.repeat(4001)))).toBe(1001);
    expect(inline('text/csv; charset=utf-8', Buffer.from('a,b\n'))).toBe(1);
  });

  it('charges the default of another type', () => {
    expect(inline('application/zip', Buffer.alloc(1_000))).toBe(DEFAULT_OTHER_MEDIA_TOKENS);
  });
});

describe('referencedMediaTokens', () => {
  it('charges the planning default of the declared type, whatever its spelling', () => {
    expect(referencedMediaTokens('image/jpeg')).toBe(1032);
    expect(referencedMediaTokens('application/pdf')).toBe(2580);
    expect(referencedMediaTokens('audio/mpeg')).toBe(1920);
    expect(referencedMediaTokens('Video/MP4; codecs="avc1"')).toBe(15780);
    expect(referencedMediaTokens('text/plain')).toBe(1032);
    expect([DEFAULT_AUDIO_TOKENS, DEFAULT_VIDEO_TOKENS, DEFAULT_OTHER_MEDIA_TOKENS]).toEqual([
      1920, 15780, 1032,
    ]);
  });

  it('takes the type from the file extension when none is declared', () => {
    expect(referencedMediaTokens(undefined, 'https://example.com/clips/a.MP4?sig=x.png#t=1')).toBe(15780);
    expect(referencedMediaTokens(undefined, 'gs://bucket/talks/b.m4a')).toBe(1920);
    expect(referencedMediaTokens(undefined, 'gs://bucket/papers/c.pdf')).toBe(2580);
    expect(referencedMediaTokens(undefined, 'https://example.com/d.webp')).toBe(1032);
  });

  it('charges the unknown-type default when neither type nor extension says', () => {
    expect(referencedMediaTokens(undefined, 'gs://bucket/object')).toBe(1032);
    expect(referencedMediaTokens(undefined, 'https://example.com/.mp4/x')).toBe(1032);
    expect(referencedMediaTokens(undefined)).toBe(1032);
  });

  it('lets a declared type win over the extension', () => {
    expect(referencedMediaTokens('image/png', 'https://example.com/a.mp4')).toBe(1032);
  });
});
