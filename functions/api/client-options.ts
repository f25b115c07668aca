/** Options of the jobs API client's calls. */
import type { JobView } from './jobs.js';

export interface JobsClientOptions {
  /**
   * An identity token for a deployed ingest function (it is private), e.g. from
   * `gcloud auth print-identity-token`. Sent as `Authorization: Bearer …`.
   */
  token?: string;
  /**
   * Called before each request for a fresh identity token (one that expires during a long watch, e.g.
   * from `google-auth-library`'s ID token client, which caches it until it nears expiry). Takes the
   * place of `token`; the latest answer is kept out of errors like `token`.
   */
  tokenProvider?: () => Promise<string>;
  /** Another fetch, e.g. one with a proxy or a test double. Defaults to the global one. */
  fetch?: typeof fetch;
}

export interface SubmitOptions {
  /** The same key with the same body returns the same job; with another body the server answers 409. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface WaitOptions {
  /** Give up (throw) when the job is not there after this long. `Infinity` waits as long as it takes. */
  timeoutMs: number;
  /** When to stop waiting; by default once the job is terminal. Called with every job polled. */
  until?: (job: JobView) => boolean;
  /** Time between polls; 500 ms by default. */
  intervalMs?: number;
  signal?: AbortSignal;
}

export interface ResultsPageOptions {
  pageToken?: string;
  /** 1 to 1000; the server's default is 100. */
  pageSize?: number;
  signal?: AbortSignal;
}

export interface EventsOptions {
  /** Resume after this event (`Last-Event-ID`): events up to and including it are not sent again. */
  lastEventId?: string;
  /** Aborting it closes the stream; so does leaving the `for await` loop. */
  signal?: AbortSignal;
}

export interface ListOptions {
  /** 1 to 100; the server's default is 20. */
  pageSize?: number;
  pageToken?: string;
  signal?: AbortSignal;
}
