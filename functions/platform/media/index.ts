import type { lookup as dnsLookup } from 'node:dns';
import type { Agent } from 'node:https';
import { addAbortSignal } from 'node:stream';
import type { Storage } from '@google-cloud/storage';
import type { GenerateContentRequest, MediaRef, Part } from '../../core/jobs.js';
import { mediaLocationsFor } from '../../core/owner-prefix.js';
import type { Logger } from '../logger.js';
import { abortable } from './abort.js';
import { MediaBudget, type MediaHold } from './budget.js';
import { loggable, MediaError, toMediaError } from './error.js';
import { openGcsObject } from './gcs.js';
import { mediaType } from './mime-type.js';
import { holdFor, type PartLimits, type Source, toPart } from './part.js';
import type { MediaUploader } from './upload.js';
import { openUrl } from './url.js';

export { createDeniedAddresses, guardedLookup, isPublicAddress } from './address.js';
export { MediaBudget } from './budget.js';
export { MediaError } from './error.js';
export { createMediaUploader } from './upload.js';

/** Fetches an item's media and returns the request with them as parts of the last user turn. */
export interface MediaFetcher {
  /** `logger` receives what the caller is not told (resolved addresses, upstream messages). */
  attach(
    request: GenerateContentRequest,
    media: MediaRef[],
    options?: {
      logger?: Logger;
      /**
       * The owner of the item's job: its gs:// media are read only from that owner's folders and the
       * shared prefixes (core/owner-prefix.ts); a job without an owner reads the whole roots.
       */
      owner?: string | undefined;
    },
  ): Promise<GenerateContentRequest>;
}

/** Gemini refuses inline request bodies over 20 MB; leave room for the prompt. */
export const MAX_INLINE_MEDIA_BYTES = 18 * 1024 * 1024;
/** Bigger media are streamed to the Files API, up to this size. */
export const MAX_FILE_MEDIA_BYTES = 512 * 1024 * 1024;
/** How long one medium may take, from the first byte asked to the part ready (upload included). */
export const DEFAULT_MEDIA_DEADLINE_MS = 60_000;
/** How long all the media of one item may take together. */
export const DEFAULT_ITEM_MEDIA_DEADLINE_MS = 120_000;

/**
 * Deadlines that fit in an item's lease: the lease must outlast the media and the longest wait for
 * Gemini, or another delivery could claim the item while this one still calls Gemini. The item's
 * media get what the lease leaves after Gemini's timeout and a 10 s margin (at most 120 s, at least
 * 10 s); one medium at most 60 s of that.
 */
export function mediaDeadlinesFor(leaseMs: number, geminiTimeoutMs: number) {
  const itemDeadlineMs = Math.max(
    10_000,
    Math.min(DEFAULT_ITEM_MEDIA_DEADLINE_MS, leaseMs - geminiTimeoutMs - 10_000),
  );
  return { itemDeadlineMs, deadlineMs: Math.min(DEFAULT_MEDIA_DEADLINE_MS, itemDeadlineMs) };
}

export interface MediaFetcherOptions {
  storage: Storage;
  /**
   * The media roots (config.mediaGcsAllowed, `gs://bucket/prefix/` entries): a job reads only its
   * owner's folder in each (`{root}{ownerPrefix}/`), or all of them when it has no owner.
   */
  gcsAllowed: readonly string[];
  /** Read-only prefixes every job may read media from (config.mediaGcsShared). */
  gcsShared?: readonly string[];
  /** DNS lookup for URL media; the guarded system resolver by default. */
  lookup?: typeof dnsLookup;
  /** https agent for URL media (tests trust their own certificate authority through it). */
  agent?: Agent;
  /** Largest medium sent inline; the item's inline media together must stay under it too. */
  maxBytes?: number;
  /** Where media larger than `maxBytes` go; without it they are refused. */
  uploader?: MediaUploader;
  /** Largest medium sent through the Files API. */
  maxFileBytes?: number;
  /** See DEFAULT_MEDIA_DEADLINE_MS; keep it, and `itemDeadlineMs`, well inside the item's lease. */
  deadlineMs?: number;
  /** See DEFAULT_ITEM_MEDIA_DEADLINE_MS. */
  itemDeadlineMs?: number;
  /** The instance's media memory budget, shared by every item it runs; 256 MiB by default. */
  budget?: MediaBudget;
  /** The log of media problems when `attach` is given none. */
  logger?: Logger;
}

/**
 * The worker's media fetcher. Every medium is checked before a byte is read (gs:// only under the
 * allowed prefixes, URLs only to public addresses, the medium's own type), bounded in size, in
 * time (`deadlineMs` each, `itemDeadlineMs` in all) and in memory (the instance's `budget`). Small
 * media go inline; larger ones stream to the Files API without touching the disk and are referred
 * to by `fileData`.
 */
export function createMediaFetcher(options: MediaFetcherOptions): MediaFetcher {
  const maxBytes = options.maxBytes ?? MAX_INLINE_MEDIA_BYTES;
  const maxFileBytes = options.maxFileBytes ?? MAX_FILE_MEDIA_BYTES;
  const deadlineMs = options.deadlineMs ?? DEFAULT_MEDIA_DEADLINE_MS;
  const itemDeadlineMs = options.itemDeadlineMs ?? DEFAULT_ITEM_MEDIA_DEADLINE_MS;
  const budget = options.budget ?? new MediaBudget();
  const { uploader } = options;

  async function open(ref: MediaRef, signal: AbortSignal, gcsAllowed: readonly string[]): Promise<Source> {
    if (ref.url) {
      const res = await openUrl(ref.url, {
        signal,
        ...(options.lookup ? { lookup: options.lookup } : {}),
        ...(options.agent ? { agent: options.agent } : {}),
      });
      try {
        const mimeType = mediaType(res.headers['content-type'], ref.mimeType, ref.url);
        return { stream: res, size: Number(res.headers['content-length'] ?? 0), mimeType, what: ref.url };
      } catch (err) {
        res.destroy();
        throw err;
      }
    }
    if (ref.gcsUri) {
      const object = await openGcsObject(options.storage, ref.gcsUri, gcsAllowed, signal);
      try {
        const mimeType = mediaType(object.contentType, ref.mimeType, ref.gcsUri);
        return { stream: object.stream, size: object.size, mimeType, what: ref.gcsUri };
      } catch (err) {
        object.stream.destroy();
        throw err;
      }
    }
    throw new MediaError('a medium needs a url or a gcsUri');
  }

  const limits: PartLimits = { maxBytes, maxFileBytes, ...(uploader ? { uploader } : {}) };

  async function fetchOne(
    ref: MediaRef,
    itemSignal: AbortSignal,
    gcsAllowed: readonly string[],
  ): Promise<{ part: Part; hold: MediaHold }> {
    const what = ref.url ?? ref.gcsUri ?? 'a medium';
    const deadline = new AbortController();
    const timer = setTimeout(
      () =>
        deadline.abort(
          new MediaError(
            `${what} took longer than ${deadlineMs / 1000} s to fetch; the item will be tried again`,
            false,
          ),
        ),
      deadlineMs,
    );
    const signal = AbortSignal.any([deadline.signal, itemSignal]);
    let source: Source | undefined;
    let hold: MediaHold | undefined;
    try {
      source = await open(ref, signal, gcsAllowed);
      addAbortSignal(signal, source.stream);
      const limit = uploader ? maxFileBytes : maxBytes;
      if (source.size > limit) throw new MediaError(`${what} is larger than ${limit} bytes`);
      hold = await budget.acquire(holdFor(source.size, limits), signal);
      return { part: await abortable(toPart(source, hold, signal, limits), signal), hold };
    } catch (err) {
      hold?.release();
      source?.stream.destroy();
      throw toMediaError(err, signal, what);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async attach(request, media, attachOptions) {
      const log = attachOptions?.logger ?? options.logger;
      const gcsAllowed = mediaLocationsFor(
        { roots: options.gcsAllowed, shared: options.gcsShared ?? [] },
        attachOptions?.owner,
      );
      const itemDeadline = new AbortController();
      const timer = setTimeout(
        () =>
          itemDeadline.abort(
            new MediaError(
              `the item's media took longer than ${itemDeadlineMs / 1000} s to fetch; the item will be tried again`,
              false,
            ),
          ),
        itemDeadlineMs,
      );
      const parts: Part[] = [];
      const holds: MediaHold[] = [];
      let inline = 0;
      let ref: MediaRef | undefined;
      try {
        for (ref of media) {
          const { part, hold } = await fetchOne(ref, itemDeadline.signal, gcsAllowed);
          holds.push(hold);
          inline += hold.bytes;
          if (inline > maxBytes)
            throw new MediaError(`the item's inline media add up to more than ${maxBytes} bytes`);
          parts.push(part);
        }
      } catch (err) {
        const what = ref?.url ?? ref?.gcsUri ?? 'a medium';
        const e = toMediaError(err, itemDeadline.signal, what);
        log?.warn(
          {
            event: 'media.failed',
            media: loggable(what),
            permanent: e.permanent,
            reason: e.message.replaceAll(what, loggable(what)),
            detail: e.detail,
          },
          e.permanent ? 'a medium was refused' : 'a medium failed; the item will be tried again',
        );
        throw e;
      } finally {
        clearTimeout(timer);
        for (const hold of holds) hold.release();
      }
      const contents = request.contents.map((c) => ({ ...c, parts: [...c.parts] }));
      const lastUser = [...contents].reverse().find((c) => (c.role ?? 'user') === 'user');
      if (lastUser) lastUser.parts.push(...parts);
      else contents.push({ role: 'user', parts });
      return { ...request, contents };
    },
  };
}
