import type { Readable } from 'node:stream';
import type { Part } from '../../core/jobs.js';
import type { MediaHold } from './budget.js';
import { MediaError } from './error.js';
import type { MediaUploader } from './upload.js';

/**
 * An opened medium made into a part of the request: inline data when it is small enough, else
 * streamed to the Files API and referred to by `fileData`; and what it holds of the instance's media
 * memory meanwhile.
 */

/** Memory an upload holds: one chunk of the Files API's announced granularity (8 MiB) and a piece. */
const UPLOAD_HOLD_BYTES = 9 * 1024 * 1024;

/** The fetcher's size limits: inline at most `maxBytes`; with an uploader, files up to `maxFileBytes`. */
export interface PartLimits {
  maxBytes: number;
  maxFileBytes: number;
  uploader?: MediaUploader;
}

/** An opened medium: its bytes (not yet flowing), its announced size (0 when unknown), its type. */
export interface Source {
  stream: Readable;
  size: number;
  mimeType: string;
  what: string;
}

/** The stream's bytes, refused (`${tooBig} ${maxBytes} bytes`) as soon as they pass `maxBytes`. */
async function readLimited(stream: AsyncIterable<Buffer>, maxBytes: number, tooBig: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > maxBytes) throw new MediaError(`${tooBig} ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const inlinePart = (mimeType: string, data: Buffer): Part => ({
  inlineData: { mimeType, data: data.toString('base64') },
});

/** Bytes a medium may hold in memory while it is fetched, decided from its announced size. */
export function holdFor(size: number, { maxBytes, uploader }: PartLimits): number {
  if (size > 0 && size <= maxBytes) return size;
  if (!uploader) return maxBytes;
  return size > maxBytes ? UPLOAD_HOLD_BYTES : maxBytes + UPLOAD_HOLD_BYTES;
}

/**
 * Known small media, and any medium without an uploader, are read into memory (at most
 * `maxBytes`). Known large ones stream to the Files API. Ones of unknown size are read up to
 * `maxBytes`: if they end there they go inline, otherwise what was read and the rest stream on.
 */
export async function toPart(
  source: Source,
  hold: MediaHold,
  signal: AbortSignal,
  { maxBytes, maxFileBytes, uploader }: PartLimits,
): Promise<Part> {
  if (!uploader || (source.size > 0 && source.size <= maxBytes)) {
    // What a medium announced is what it holds in the budget: it may not send more.
    const data =
      source.size > 0 && source.size <= maxBytes
        ? await readLimited(source.stream, source.size, `${source.what} is larger than its announced`)
        : await readLimited(source.stream, maxBytes, `${source.what} is larger than`);
    hold.shrink(data.length);
    return inlinePart(source.mimeType, data);
  }
  const rest = source.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const prefix: Buffer[] = [];
  if (source.size <= maxBytes) {
    for (let seen = 0; seen <= maxBytes; ) {
      const next = await rest.next();
      if (next.done) {
        const data = Buffer.concat(prefix);
        hold.shrink(data.length);
        return inlinePart(source.mimeType, data);
      }
      prefix.push(next.value);
      seen += next.value.length;
    }
  }
  let sent = 0;
  const count = (chunk: Buffer) => {
    sent += chunk.length;
    if (sent > maxFileBytes) throw new MediaError(`${source.what} is larger than ${maxFileBytes} bytes`);
    return chunk;
  };
  async function* bytes(): AsyncGenerator<Uint8Array> {
    while (prefix.length > 0) yield count(prefix.shift()!);
    for (let next = await rest.next(); !next.done; next = await rest.next()) yield count(next.value);
  }
  try {
    // The announced size is declared at upload start (the Files API's documented form); a medium
    // that sends more or less than it announced is refused by the uploader before finalizing.
    const sizeBytes = source.size > 0 ? source.size : undefined;
    const file = await uploader.upload(bytes(), {
      mimeType: source.mimeType,
      ...(sizeBytes !== undefined ? { sizeBytes } : {}),
      signal,
    });
    return { fileData: { mimeType: file.mimeType, fileUri: file.uri } };
  } finally {
    hold.release();
  }
}
