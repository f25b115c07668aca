import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Storage } from '@google-cloud/storage';
import type { GenerateContentRequest, MediaRef, Part } from '../core/jobs.js';
import type { FileUploader } from './gemini.js';

/** A media problem no retry can fix (refused address, too big, wrong type, not found). */
export class MediaError extends Error {
  readonly permanent: boolean;
  constructor(message: string, permanent = true) {
    super(message);
    this.name = 'MediaError';
    this.permanent = permanent;
  }
}

/** Fetches an item's media and returns the request with them as inline parts of the last user turn. */
export interface MediaFetcher {
  attach(request: GenerateContentRequest, media: MediaRef[]): Promise<GenerateContentRequest>;
}

/** Gemini refuses inline request bodies over 20 MB; leave room for the prompt. */
export const MAX_INLINE_MEDIA_BYTES = 18 * 1024 * 1024;
/** Bigger media go through the Files API, up to this size (the worker stages them on local disk). */
export const MAX_FILE_MEDIA_BYTES = 512 * 1024 * 1024;
const MAX_REDIRECTS = 3;
const ALLOWED_TYPES =
  /^(image\/(png|jpeg|webp|heic|heif|gif)|application\/pdf|audio\/[\w.+-]+|video\/[\w.+-]+|text\/plain)$/;

/**
 * Addresses a worker must never fetch from: loopback, private, link-local (the metadata server lives
 * at 169.254.169.254), carrier-grade NAT, unique-local, multicast, unspecified. IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d) need no rule of their own: BlockList checks them against the IPv4 rules
 * (and a ::ffff:0:0/96 rule would match every IPv4 address).
 */
export function createDeniedAddresses(): BlockList {
  const list = new BlockList();
  for (const [net, bits] of [
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['100.64.0.0', 10],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['172.16.0.0', 12],
    ['192.0.0.0', 24],
    ['192.168.0.0', 16],
    ['198.18.0.0', 15],
    ['224.0.0.0', 4],
    ['240.0.0.0', 4],
  ] as const) {
    list.addSubnet(net, bits, 'ipv4');
  }
  for (const [net, bits] of [
    ['::', 128],
    ['::1', 128],
    ['fc00::', 7],
    ['fe80::', 10],
    ['ff00::', 8],
    ['64:ff9b::', 96],
  ] as const) {
    list.addSubnet(net, bits, 'ipv6');
  }
  return list;
}

/** True when `address` may be fetched from. */
export function isPublicAddress(address: string, denied: BlockList = createDeniedAddresses()): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return !denied.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

type Lookup = typeof dnsLookup;

/**
 * A DNS lookup that fails for non-public addresses. It runs when the socket connects, so a name that
 * resolves differently on a second lookup (DNS rebinding) is checked on the address actually used.
 */
export function guardedLookup(base: Lookup = dnsLookup, denied = createDeniedAddresses()): Lookup {
  return ((hostname: string, options: object, callback: (...args: unknown[]) => void) => {
    base(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const list = addresses as LookupAddress[];
      const bad = list.find((a) => !isPublicAddress(a.address, denied));
      if (bad || list.length === 0) {
        return callback(
          new MediaError(`refused to fetch from ${hostname}: ${bad?.address ?? 'no address'} is not public`),
        );
      }
      const all = (options as { all?: boolean }).all;
      if (all) return callback(null, list);
      return callback(null, list[0]!.address, list[0]!.family);
    });
  }) as Lookup;
}

export interface MediaFetcherOptions {
  storage: Storage;
  /** DNS lookup for URL media; the guarded system resolver by default. */
  lookup?: Lookup;
  /** Largest medium sent inline; the item's media together must stay under it too. */
  maxBytes?: number;
  /** Where media larger than `maxBytes` go; without it they are refused. */
  uploader?: FileUploader;
  /** Largest medium sent through the Files API. */
  maxFileBytes?: number;
}

async function readLimited(stream: AsyncIterable<Buffer>, maxBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > maxBytes) throw new MediaError(`${what} is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function mimeOf(declared: string | undefined, served: string | undefined, what: string): string {
  const type = (declared ?? served ?? '').split(';')[0]!.trim().toLowerCase();
  if (!ALLOWED_TYPES.test(type))
    throw new MediaError(`${what} has type "${type || 'unknown'}", which Gemini does not take inline`);
  return type;
}

export function createMediaFetcher(options: MediaFetcherOptions): MediaFetcher {
  const maxBytes = options.maxBytes ?? MAX_INLINE_MEDIA_BYTES;
  const maxFileBytes = options.maxFileBytes ?? MAX_FILE_MEDIA_BYTES;
  const lookup = options.lookup ?? guardedLookup();

  const getUrl = (url: URL): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      if (url.protocol !== 'https:')
        return reject(new MediaError(`only https URLs are fetched, not ${url.protocol}`));
      if (
        isIP(url.hostname.replace(/^\[|\]$/g, '')) &&
        !isPublicAddress(url.hostname.replace(/^\[|\]$/g, ''))
      ) {
        return reject(new MediaError(`refused to fetch from ${url.hostname}: not a public address`));
      }
      const req = httpsRequest(
        url,
        { lookup, timeout: 30_000, headers: { 'user-agent': 'gemini-fanout' } },
        resolve,
      );
      req.on('timeout', () => req.destroy(new MediaError(`timed out fetching ${url.href}`, false)));
      req.on('error', (err) => reject(err instanceof MediaError ? err : new MediaError(err.message, false)));
      req.end();
    });

  /** An opened medium: its bytes as a stream, its declared size (0 when unknown) and its type. */
  interface Source {
    stream: Readable;
    size: number;
    mimeType: string;
    what: string;
  }

  async function openUrl(ref: MediaRef): Promise<Source> {
    let url = new URL(ref.url!);
    for (let hop = 0; ; hop++) {
      const res = await getUrl(url);
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (hop >= MAX_REDIRECTS) throw new MediaError(`too many redirects fetching ${ref.url}`);
        url = new URL(res.headers.location, url);
        continue;
      }
      if (status !== 200) {
        res.resume();
        throw new MediaError(`fetching ${ref.url} answered ${status}`, status >= 500 || status === 429);
      }
      try {
        const mimeType = mimeOf(ref.mimeType, res.headers['content-type'], ref.url!);
        return { stream: res, size: Number(res.headers['content-length'] ?? 0), mimeType, what: ref.url! };
      } catch (err) {
        res.destroy();
        throw err;
      }
    }
  }

  async function openGcs(ref: MediaRef): Promise<Source> {
    const m = /^gs:\/\/([^/]+)\/(.+)$/.exec(ref.gcsUri!)!;
    const file = options.storage.bucket(m[1]!).file(m[2]!);
    let metadata: { size?: string | number; contentType?: string };
    try {
      [metadata] = await file.getMetadata();
    } catch (err) {
      const code = (err as { code?: number }).code;
      throw new MediaError(
        `${ref.gcsUri}: ${(err as Error).message}`,
        !(code === undefined || code >= 500 || code === 429),
      );
    }
    const mimeType = mimeOf(ref.mimeType, metadata.contentType, ref.gcsUri!);
    return { stream: file.createReadStream(), size: Number(metadata.size ?? 0), mimeType, what: ref.gcsUri! };
  }

  /**
   * Small media go inline. Larger ones (or ones of unknown size that turn out larger) are staged on
   * local disk and uploaded to the Files API, then referred to by `fileData`; never held in memory.
   */
  const inlinePart = (mimeType: string, data: Buffer): Part => ({
    inlineData: { mimeType, data: data.toString('base64') },
  });

  async function toPart(source: Source): Promise<Part> {
    const limit = options.uploader ? maxFileBytes : maxBytes;
    if (source.size > limit) {
      source.stream.destroy();
      throw new MediaError(`${source.what} is larger than ${limit} bytes`);
    }
    if (!options.uploader || (source.size > 0 && source.size <= maxBytes)) {
      return inlinePart(source.mimeType, await readLimited(source.stream, maxBytes, source.what));
    }
    const dir = await mkdtemp(join(tmpdir(), 'fanout-media-'));
    try {
      const path = join(dir, 'media');
      let seen = 0;
      await pipeline(
        source.stream,
        async function* limit(chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            seen += chunk.length;
            if (seen > maxFileBytes)
              throw new MediaError(`${source.what} is larger than ${maxFileBytes} bytes`);
            yield chunk;
          }
        },
        createWriteStream(path),
      );
      if (seen <= maxBytes) return inlinePart(source.mimeType, await readFile(path));
      const uploaded = await options.uploader.upload(path, source.mimeType);
      return { fileData: { mimeType: uploaded.mimeType, fileUri: uploaded.uri } };
    } catch (err) {
      if (err instanceof MediaError) throw err;
      const status = (err as { httpStatus?: number }).httpStatus;
      throw new MediaError(
        `${source.what}: ${(err as Error).message}`,
        status !== undefined && status < 500 && status !== 429,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  return {
    async attach(request, media) {
      const parts: Part[] = [];
      let inline = 0;
      for (const ref of media) {
        const part = await toPart(ref.url ? await openUrl(ref) : await openGcs(ref));
        inline += (part.inlineData?.data.length ?? 0) * 0.75;
        if (inline > maxBytes)
          throw new MediaError(`the item's inline media add up to more than ${maxBytes} bytes`);
        parts.push(part);
      }
      const contents = request.contents.map((c) => ({ ...c, parts: [...c.parts] }));
      const lastUser = [...contents].reverse().find((c) => (c.role ?? 'user') === 'user');
      if (lastUser) lastUser.parts.push(...parts);
      else contents.push({ role: 'user', parts });
      return { ...request, contents };
    },
  };
}
