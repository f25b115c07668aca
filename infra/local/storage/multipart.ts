import { invalid } from './errors.js';

/** Largest metadata part accepted before the data part must begin. */
const MAX_HEAD_BYTES = 1024 * 1024;

/** A `multipart/related` upload: the JSON metadata part, parsed, and the data part as a stream. */
export interface MultipartUpload {
  metadata: Record<string, unknown>;
  /** The Content-Type header of the data part, if it had one. */
  dataContentType: string | undefined;
  /** The data part's bytes; iterate once. Ends with a 400 if the closing boundary is missing. */
  data: AsyncIterable<Buffer>;
}

/** Reads the boundary out of a `multipart/related; boundary=...` content type. */
export function boundaryOf(contentType: string | undefined): string {
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? '');
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) throw invalid('Missing multipart boundary in Content-Type.');
  return boundary;
}

function partContentType(headerBlock: string): string | undefined {
  for (const line of headerBlock.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === 'content-type')
      return line.slice(colon + 1).trim();
  }
  return undefined;
}

/**
 * Parses an upload body of two parts (metadata JSON, then the bytes) without holding the
 * bytes: only the metadata head is buffered, and the data part is passed on as it arrives,
 * keeping back just enough of the tail to recognise the closing delimiter across chunks.
 */
export async function parseMultipart(
  source: AsyncIterable<Buffer>,
  boundary: string,
): Promise<MultipartUpload> {
  const iterator = source[Symbol.asyncIterator]();
  const opening = Buffer.from(`--${boundary}`);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const blankLine = Buffer.from('\r\n\r\n');
  let head = Buffer.alloc(0);

  // Head: "--B\r\n<headers>\r\n\r\n<json>\r\n--B\r\n<headers>\r\n\r\n", then data.
  let parsed:
    | { metadata: Record<string, unknown>; dataContentType: string | undefined; rest: Buffer }
    | undefined;
  while (!parsed) {
    parsed = tryParseHead(head, opening, delimiter, blankLine);
    if (parsed) break;
    if (head.length > MAX_HEAD_BYTES) throw invalid('Metadata part is too large.');
    const next = await iterator.next();
    if (next.done) throw invalid('Malformed multipart body.');
    head = Buffer.concat([head, next.value]);
  }
  const { rest } = parsed;

  async function* data(): AsyncGenerator<Buffer> {
    let held = rest;
    for (;;) {
      const end = held.indexOf(delimiter);
      if (end >= 0) {
        if (end > 0) yield held.subarray(0, end);
        // Drain the epilogue so the request completes normally.
        for (let n = await iterator.next(); !n.done; n = await iterator.next());
        return;
      }
      const safe = held.length - (delimiter.length - 1);
      if (safe > 0) {
        yield held.subarray(0, safe);
        held = held.subarray(safe);
      }
      const next = await iterator.next();
      if (next.done) throw invalid('Multipart body ended before its closing boundary.');
      held = held.length > 0 ? Buffer.concat([held, next.value]) : next.value;
    }
  }

  return { metadata: parsed.metadata, dataContentType: parsed.dataContentType, data: data() };
}

function tryParseHead(
  head: Buffer,
  opening: Buffer,
  delimiter: Buffer,
  blankLine: Buffer,
): { metadata: Record<string, unknown>; dataContentType: string | undefined; rest: Buffer } | undefined {
  const start = head.indexOf(opening);
  if (start < 0) return undefined;
  const firstHeadersEnd = head.indexOf(blankLine, start);
  if (firstHeadersEnd < 0) return undefined;
  const jsonStart = firstHeadersEnd + blankLine.length;
  const jsonEnd = head.indexOf(delimiter, jsonStart);
  if (jsonEnd < 0) return undefined;
  const secondHeadersStart = jsonEnd + delimiter.length;
  const secondHeadersEnd = head.indexOf(blankLine, secondHeadersStart);
  if (secondHeadersEnd < 0) return undefined;
  const jsonText = head.subarray(jsonStart, jsonEnd).toString('utf8').trim();
  let metadata: unknown = {};
  if (jsonText !== '') {
    try {
      metadata = JSON.parse(jsonText);
    } catch {
      throw invalid('Metadata part is not valid JSON.');
    }
  }
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw invalid('Metadata part must be a JSON object.');
  }
  const dataHeaders = head.subarray(secondHeadersStart, secondHeadersEnd).toString('latin1');
  return {
    metadata: metadata as Record<string, unknown>,
    dataContentType: partContentType(dataHeaders),
    rest: head.subarray(secondHeadersEnd + blankLine.length),
  };
}
