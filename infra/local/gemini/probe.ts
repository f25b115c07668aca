import { open } from 'node:fs/promises';

/**
 * What the token rule needs to know of a medium, read from its bytes where that is cheap: an image's
 * size from its PNG, GIF, JPEG or WebP header, a PDF's page count, a WAV file's duration. Anything
 * not found is left out, and the rule falls back on the byte size.
 */
export interface MediaProbe {
  width?: number;
  height?: number;
  pages?: number;
  seconds?: number;
}

/** Bytes of a file's head read for its header (a JPEG's size can sit behind big EXIF segments). */
export const PROBE_HEAD_BYTES = 256 * 1024;
/** PDFs up to this size are read whole to count their pages; bigger ones are counted by size. */
export const PROBE_PDF_MAX_BYTES = 64 * 1024 * 1024;

function imageSize(b: Buffer): { width: number; height: number } | undefined {
  if (b.length >= 24 && b.readUInt32BE(0) === 0x89504e47 && b.toString('latin1', 12, 16) === 'IHDR') {
    return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  }
  if (b.length >= 10 && b.toString('latin1', 0, 4) === 'GIF8') {
    return { width: b.readUInt16LE(6), height: b.readUInt16LE(8) };
  }
  if (b.length >= 30 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') {
    const chunk = b.toString('latin1', 12, 16);
    if (chunk === 'VP8 ') return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
    if (chunk === 'VP8L') {
      const [b0 = 0, b1 = 0, b2 = 0, b3 = 0] = b.subarray(21, 25);
      return {
        width: 1 + (b0 | ((b1 & 0x3f) << 8)),
        height: 1 + ((b1 >> 6) | (b2 << 2) | ((b3 & 0xf) << 10)),
      };
    }
    if (chunk === 'VP8X') return { width: 1 + b.readUIntLE(24, 3), height: 1 + b.readUIntLE(27, 3) };
    return undefined;
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) return undefined;
      const marker = b[i + 1] as number;
      if (marker === 0xff) {
        i++;
        continue;
      }
      const isFrame =
        marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isFrame) return { width: b.readUInt16BE(i + 7), height: b.readUInt16BE(i + 5) };
      if (marker === 0xda || marker === 0xd9) return undefined;
      i += 2 + b.readUInt16BE(i + 2);
    }
  }
  return undefined;
}

/** Pages of a PDF: its `/Type /Page` objects (not `/Pages`); 0 when they sit in compressed streams. */
function pdfPages(b: Buffer): number {
  return b.toString('latin1').match(/\/Type\s*\/Page(?![A-Za-z])/g)?.length ?? 0;
}

/** Seconds of a PCM WAV file from its header (byte rate) and size. */
function wavSeconds(b: Buffer, size: number): number | undefined {
  if (b.length < 44 || b.toString('latin1', 0, 4) !== 'RIFF' || b.toString('latin1', 8, 12) !== 'WAVE')
    return undefined;
  const byteRate = b.readUInt32LE(28);
  return byteRate > 0 ? Math.max(0, size - 44) / byteRate : undefined;
}

/**
 * Probes a medium of `mimeType` from `bytes` (its head, or all of it for a PDF) and its whole `size`.
 */
export function probeBytes(mimeType: string, bytes: Buffer, size: number): MediaProbe {
  if (mimeType.startsWith('image/')) return imageSize(bytes) ?? {};
  if (mimeType === 'application/pdf') {
    const pages = bytes.length >= size ? pdfPages(bytes) : 0;
    return pages > 0 ? { pages } : {};
  }
  if (mimeType.startsWith('audio/')) {
    const seconds = wavSeconds(bytes, size);
    return seconds === undefined ? {} : { seconds };
  }
  return {};
}

/** Whether the token rule looks into a medium of this type (images, PDFs, audio, video). */
export function isProbedMedia(mimeType: string): boolean {
  return /^(image|audio|video)\//.test(mimeType) || mimeType === 'application/pdf';
}

/** Probes a stored file: its head, or the whole of a PDF up to {@link PROBE_PDF_MAX_BYTES}. */
export async function probeFile(path: string, mimeType: string, size: number): Promise<MediaProbe> {
  if (!isProbedMedia(mimeType) || mimeType.startsWith('video/')) return {};
  const wanted = mimeType === 'application/pdf' ? (size <= PROBE_PDF_MAX_BYTES ? size : 0) : PROBE_HEAD_BYTES;
  if (wanted === 0) return {};
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(Math.min(wanted, size));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return probeBytes(mimeType, buffer.subarray(0, bytesRead), size);
  } finally {
    await handle.close();
  }
}
