import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

/** One line of a byte stream, with where it stands in the stream. */
export interface Line {
  /** The line without its end of line; absent when the line was over the limit. */
  text?: string;
  /** The line's length in bytes when it was over the limit (its bytes were dropped as they came). */
  tooLong?: number;
  /** 1-based. */
  lineNumber: number;
  /** Bytes [fromByte, toByte) of the stream, its end of line included. */
  fromByte: number;
  toByte: number;
}

const NEWLINE = 0x0a;

/**
 * Splits a byte stream into lines with bounded memory: a line longer than `maxLineBytes` is not
 * kept (its bytes are counted and dropped as they arrive), so a file with a 1 GB line costs no more
 * memory than one with short lines. `\r\n` and a last line without `\n` are handled.
 */
export async function* splitLines(
  source: AsyncIterable<Uint8Array>,
  maxLineBytes: number,
  startByte = 0,
): AsyncGenerator<Line> {
  let parts: Buffer[] = [];
  let held = 0;
  let length = 0;
  let lineNumber = 0;
  let lineStart = startByte;
  const emit = (endByte: number): Line => {
    lineNumber += 1;
    const line: Line = { lineNumber, fromByte: lineStart, toByte: endByte };
    if (length > maxLineBytes) line.tooLong = length;
    else {
      let buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, held);
      if (buf.length > 0 && buf[buf.length - 1] === 0x0d) buf = buf.subarray(0, buf.length - 1);
      line.text = buf.toString('utf8');
    }
    parts = [];
    held = 0;
    length = 0;
    lineStart = endByte;
    return line;
  };
  let position = startByte;
  for await (const chunk of source) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    let from = 0;
    for (;;) {
      const nl = bytes.indexOf(NEWLINE, from);
      const end = nl === -1 ? bytes.length : nl;
      const piece = bytes.subarray(from, end);
      length += piece.length;
      if (length <= maxLineBytes + 1 && piece.length > 0) {
        parts.push(piece);
        held += piece.length;
      }
      if (nl === -1) break;
      yield emit(position + nl + 1);
      from = nl + 1;
    }
    position += bytes.length;
  }
  if (length > 0) yield emit(position);
}

/** gzip's magic number: a `.jsonl.gz` is read through gunzip, whatever its content type says. */
export function isGzip(firstBytes: Uint8Array): boolean {
  return firstBytes.length >= 2 && firstBytes[0] === 0x1f && firstBytes[1] === 0x8b;
}

/**
 * The bytes of a stream, gunzipped when they are gzip (decided on the first two bytes): Cloud
 * Storage serves a gzip object as is, unless it was stored with `Content-Encoding: gzip` and the
 * client decompresses it on the way.
 */
export async function* maybeGunzip(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const rest = (async function* () {
    yield first.value;
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      yield next.value;
    }
  })();
  if (!isGzip(first.value)) {
    yield* rest;
    return;
  }
  // pipeline() destroys the gunzip stream with any error of the source: the loop below throws it.
  const gunzip = createGunzip();
  pipeline(Readable.from(rest), gunzip, () => undefined);
  for await (const chunk of gunzip) yield chunk as Buffer;
}
