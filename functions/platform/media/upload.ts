import { sleep } from '../../api/sleep.js';
import { GEMINI_API_VERSION, GeminiCallError } from '../gemini/client.js';
import { uploadResumable } from '../gemini/files-upload.js';
import { type RestTransport, restCall } from '../gemini/rest.js';

const DEFAULT_BASE_URL = 'https://generativelanguage.googleapis.com';
/** Wait between looks at a file that is still PROCESSING. */
const DEFAULT_POLL_MS = 2000;

/** Streams a medium into the Files API and answers it once usable, as a `fileData` part names it. */
export interface MediaUploader {
  upload(
    source: AsyncIterable<Uint8Array>,
    /** `sizeBytes`: the medium's length when known, declared at upload start (see `uploadResumable`). */
    options: { mimeType: string; sizeBytes?: number; signal?: AbortSignal },
  ): Promise<{ uri: string; mimeType: string }>;
}

export interface MediaUploaderOptions {
  apiKey: string;
  baseUrl?: string;
  /** Bound on each REST call (the whole upload is bounded by the caller's signal). */
  timeoutMs: number;
  fetch?: typeof fetch;
  pollMs?: number;
}

/**
 * The Files API uploader for media. The bytes go through the same streamed resumable upload as the
 * batch JSONL files (memory holds one chunk, nothing touches the disk), then the file is read until
 * it is ACTIVE: images usually are at once, video may be PROCESSING for a while. How long it may
 * take in all is the caller's `signal`.
 */
export function createMediaUploader(options: MediaUploaderOptions): MediaUploader {
  const t: RestTransport = {
    baseUrl: (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, ''),
    apiKey: options.apiKey,
    timeoutMs: options.timeoutMs,
    fetch: options.fetch ?? globalThis.fetch,
  };
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  return {
    async upload(source, { mimeType, sizeBytes, signal }) {
      const uploaded = await uploadResumable(t, source, {
        displayName: 'gemini-fanout medium',
        mimeType,
        ...(sizeBytes !== undefined ? { sizeBytes } : {}),
        ...(signal ? { signal } : {}),
      });
      for (;;) {
        const res = await restCall(
          t,
          `${t.baseUrl}/${GEMINI_API_VERSION}/${uploaded.name}`,
          signal ? { signal } : {},
        );
        const file = (await res.json()) as { state?: string; uri?: string; mimeType?: string };
        if (file.state === 'ACTIVE' && file.uri)
          return { uri: file.uri, mimeType: file.mimeType ?? mimeType };
        if (file.state !== 'PROCESSING') {
          throw new GeminiCallError(`uploaded file ${uploaded.name} is ${file.state}`, 200, file);
        }
        await sleep(pollMs, signal);
      }
    },
  };
}
