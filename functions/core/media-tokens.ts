/**
 * Input tokens of one media part, by Gemini's published rule as far as the request shows it:
 * - an image: 258 when both sides are at most 384 px, else 258 per 768×768 tile
 *   (ceil(w / 768) · ceil(h / 768) · 258); the size comes from the PNG, JPEG, GIF, WebP or HEIF header;
 * - a PDF: 258 a page; pages are the page objects (`/Type /Page`) found in the file, else (all in
 *   compressed object streams) one per 4 kB;
 * - audio: 32 tokens a second, video: 263 a second; the seconds come from the byte size at a low
 *   bitrate (no container is parsed): fewer bytes a second means more seconds, so the guess errs high;
 * - text: ceil(bytes / 4), the rule of text parts.
 *
 * What the request does not show counts as a planning default for its type: media Gemini reads from
 * a `fileData` URI or the worker fetches at send time (its size is unknown at ingest), and inline
 * media whose header cannot be read. These figures are guesses for TPM planning, which must not
 * under-estimate (a plan that reserves too little sends into 429s; one that reserves too much only
 * waits a little). What is billed and reported is the answer's `usageMetadata`.
 */

/** Tokens of a small image, of one 768×768 tile of a larger one, and of one PDF page. */
export const IMAGE_TILE_TOKENS = 258;
/** An image whose sides are both at most this many pixels is one tile. */
export const SMALL_IMAGE_MAX_SIDE = 384;
/** The side of an image tile, in pixels. */
export const IMAGE_TILE_SIDE = 768;
/** Tokens of one PDF page. */
export const PDF_PAGE_TOKENS = 258;
/** Tokens of one second of audio. */
export const AUDIO_TOKENS_PER_SECOND = 32;
/** Tokens of one second of video (Gemini's published figure). */
export const VIDEO_TOKENS_PER_SECOND = 263;

/** Planning guess: inline audio's bytes a second (16 kbit/s, below common speech codecs). */
export const AUDIO_BYTES_PER_SECOND = 2_000;
/** Planning guess: inline video's bytes a second (1 Mbit/s, below common web video). */
export const VIDEO_BYTES_PER_SECOND = 125_000;

/** Planning guess for an image of unknown size: 4 tiles (up to 1536×1536 px). */
export const DEFAULT_IMAGE_TOKENS = 4 * IMAGE_TILE_TOKENS;
/**
 * Planning guess: a PDF's bytes a page, for one whose page objects are all in compressed object
 * streams (no page is visible without inflating them); text documents measured 7 to 8 kB a page.
 */
export const PDF_BYTES_PER_PAGE = 4_000;
/** Planning guess for a PDF of unknown length: 10 pages. */
export const DEFAULT_PDF_TOKENS = 10 * PDF_PAGE_TOKENS;
/** Planning guess for audio of unknown length: 60 seconds. */
export const DEFAULT_AUDIO_TOKENS = 60 * AUDIO_TOKENS_PER_SECOND;
/** Planning guess for video of unknown length: 60 seconds. */
export const DEFAULT_VIDEO_TOKENS = 60 * VIDEO_TOKENS_PER_SECOND;
/** Planning guess for media of an unknown or other type (text of unknown size among them). */
export const DEFAULT_OTHER_MEDIA_TOKENS = 4 * IMAGE_TILE_TOKENS;

type MediaKind = 'image' | 'pdf' | 'audio' | 'video' | 'text' | 'other';

/** An image's size in pixels. */
interface ImageSize {
  width: number;
  height: number;
}

/** File extensions a reference without a mimeType is taken by, so a `.mp4` is not planned as 4 tiles. */
const KIND_BY_EXTENSION: Record<string, MediaKind> = {
  ...Object.fromEntries(['png', 'jpg', 'jpeg', 'webp', 'gif', 'heic', 'heif'].map((e) => [e, 'image'])),
  pdf: 'pdf',
  ...Object.fromEntries(
    ['mp3', 'wav', 'flac', 'aac', 'ogg', 'oga', 'opus', 'm4a', 'aif', 'aiff'].map((e) => [e, 'audio']),
  ),
  ...Object.fromEntries(
    ['mp4', 'm4v', 'mov', 'webm', 'mpeg', 'mpg', 'avi', 'wmv', 'flv', '3gp', 'mkv'].map((e) => [e, 'video']),
  ),
};

function kindOfType(mimeType: string): MediaKind {
  const type = mimeType.split(';')[0]!.trim().toLowerCase();
  if (type.startsWith('image/')) return 'image';
  if (type === 'application/pdf') return 'pdf';
  if (type.startsWith('audio/')) return 'audio';
  if (type.startsWith('video/')) return 'video';
  if (type.startsWith('text/')) return 'text';
  return 'other';
}

function kindOfAddress(address: string): MediaKind {
  const path = address.split(/[?#]/)[0]!;
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return dot > 0 ? (KIND_BY_EXTENSION[name.slice(dot + 1).toLowerCase()] ?? 'other') : 'other';
}

function defaultTokens(kind: MediaKind): number {
  switch (kind) {
    case 'image':
      return DEFAULT_IMAGE_TOKENS;
    case 'pdf':
      return DEFAULT_PDF_TOKENS;
    case 'audio':
      return DEFAULT_AUDIO_TOKENS;
    case 'video':
      return DEFAULT_VIDEO_TOKENS;
    default:
      return DEFAULT_OTHER_MEDIA_TOKENS;
  }
}

/** Tokens of an image of the given size. */
function imageTokens({ width, height }: ImageSize): number {
  if (width <= SMALL_IMAGE_MAX_SIDE && height <= SMALL_IMAGE_MAX_SIDE) return IMAGE_TILE_TOKENS;
  return Math.ceil(width / IMAGE_TILE_SIDE) * Math.ceil(height / IMAGE_TILE_SIDE) * IMAGE_TILE_TOKENS;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function pngSize(b: Buffer): ImageSize | undefined {
  if (b.length < 24 || !b.subarray(0, 8).equals(PNG_SIGNATURE)) return undefined;
  if (b.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

/** SOF0–SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not. */
const isStartOfFrame = (marker: number) =>
  marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;

function jpegSize(b: Buffer): ImageSize | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i += 1; // a fill byte before the marker
      continue;
    }
    // Markers without a length: TEM, RSTn, SOI.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      i += 2;
      continue;
    }
    // End of image or start of scan: the frame header, which precedes both, was not there.
    if (marker === 0xd9 || marker === 0xda) return undefined;
    const length = b.readUInt16BE(i + 2);
    if (length < 2) return undefined;
    if (isStartOfFrame(marker)) {
      if (i + 9 > b.length) return undefined;
      return { height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) };
    }
    i += 2 + length;
  }
  return undefined;
}

function gifSize(b: Buffer): ImageSize | undefined {
  if (b.length < 10) return undefined;
  const signature = b.toString('latin1', 0, 6);
  if (signature !== 'GIF87a' && signature !== 'GIF89a') return undefined;
  return { width: b.readUInt16LE(6), height: b.readUInt16LE(8) };
}

function webpSize(b: Buffer): ImageSize | undefined {
  if (b.length < 16 || b.toString('latin1', 0, 4) !== 'RIFF' || b.toString('latin1', 8, 12) !== 'WEBP')
    return undefined;
  const chunk = b.toString('latin1', 12, 16);
  if (chunk === 'VP8 ' && b.length >= 30) {
    // A key frame: 3-byte tag, start code 9D 01 2A, then 14-bit width and height.
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return undefined;
    return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
  }
  if (chunk === 'VP8L' && b.length >= 25) {
    if (b[20] !== 0x2f) return undefined;
    const bits = b.readUInt32LE(21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8X' && b.length >= 30) {
    return { width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 };
  }
  return undefined;
}

/**
 * HEIC, HEIF and AVIF (ISO base media files): the largest of the `ispe` boxes (image spatial
 * extents). A photo is often stored as a grid of small tiles and a thumbnail, each with its own box;
 * the grid's is the largest.
 */
function heifSize(b: Buffer): ImageSize | undefined {
  if (b.length < 12 || b.toString('latin1', 4, 8) !== 'ftyp') return undefined;
  let size: ImageSize | undefined;
  for (
    let i = b.indexOf('ispe', 8, 'latin1');
    i >= 4 && i + 16 <= b.length;
    i = b.indexOf('ispe', i + 4, 'latin1')
  ) {
    // A full box of 20 bytes: size, type, version and flags, width, height.
    if (b.readUInt32BE(i - 4) !== 20) continue;
    const width = b.readUInt32BE(i + 8);
    const height = b.readUInt32BE(i + 12);
    size = { width: Math.max(width, size?.width ?? 0), height: Math.max(height, size?.height ?? 0) };
  }
  return size;
}

/** An image's size from its PNG, JPEG, GIF, WebP or HEIF header, whatever its declared type. */
function imageSize(bytes: Buffer): ImageSize | undefined {
  const size = pngSize(bytes) ?? jpegSize(bytes) ?? gifSize(bytes) ?? webpSize(bytes) ?? heifSize(bytes);
  return size && size.width > 0 && size.height > 0 ? size : undefined;
}

/**
 * A page object: the name `/Page` as a `/Type`, not `/Pages` (a node of the page tree) nor any other
 * name that starts with it. A name ends at white space or a delimiter.
 */
const PAGE_OBJECT = /\/Type\s*\/Page(?![^\s/<>[\]()%{}])/g;

/**
 * A PDF's pages: its page objects, counted in the raw bytes, else undefined (not a PDF, or pages
 * only inside compressed object streams). An object rewritten by an incremental update counts twice,
 * which errs on the safe side.
 */
function pdfPageCount(bytes: Buffer): number | undefined {
  if (!bytes.toString('latin1', 0, 1024).includes('%PDF-')) return undefined;
  const pages = bytes.toString('latin1').match(PAGE_OBJECT)?.length ?? 0;
  return pages > 0 ? pages : undefined;
}

/** Tokens of an `inlineData` part: its base64 `data` read as far as its type allows. */
export function inlineMediaTokens(mimeType: string, data: string): number {
  const kind = kindOfType(mimeType);
  const size = Buffer.byteLength(data, 'base64');
  switch (kind) {
    case 'text':
      return Math.ceil(size / 4);
    case 'image': {
      const dimensions = imageSize(Buffer.from(data, 'base64'));
      return dimensions ? imageTokens(dimensions) : DEFAULT_IMAGE_TOKENS;
    }
    case 'pdf': {
      const pages = pdfPageCount(Buffer.from(data, 'base64'));
      if (pages) return pages * PDF_PAGE_TOKENS;
      return Math.max(DEFAULT_PDF_TOKENS, Math.ceil(size / PDF_BYTES_PER_PAGE) * PDF_PAGE_TOKENS);
    }
    case 'audio':
      return size > 0
        ? Math.ceil((size * AUDIO_TOKENS_PER_SECOND) / AUDIO_BYTES_PER_SECOND)
        : DEFAULT_AUDIO_TOKENS;
    case 'video':
      return size > 0
        ? Math.ceil((size * VIDEO_TOKENS_PER_SECOND) / VIDEO_BYTES_PER_SECOND)
        : DEFAULT_VIDEO_TOKENS;
    default:
      return DEFAULT_OTHER_MEDIA_TOKENS;
  }
}

/**
 * Tokens of media the request only points at (a `fileData` part, a media reference the worker
 * fetches): the planning default of its type, taken from `mimeType`, else from the address's file
 * extension.
 */
export function referencedMediaTokens(mimeType: string | undefined, address = ''): number {
  return defaultTokens(mimeType ? kindOfType(mimeType) : kindOfAddress(address));
}
