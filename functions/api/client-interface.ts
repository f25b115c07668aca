/** The jobs API client's interface: one method per call of the API, each call's contract in its TSDoc. */
import type {
  EventsOptions,
  ListOptions,
  ResultsPageOptions,
  SubmitOptions,
  WaitOptions,
} from './client-options.js';
import type { JobEvent } from './events.js';
import type {
  CreatedJob,
  CreateJobRequest,
  JobEstimate,
  JobList,
  JobView,
  ResultEntry,
  ResultsPage,
  RetryJobRequest,
} from './jobs.js';
import type { CallbackKey } from './webhooks.js';

export interface JobsClient {
  /** `POST /jobs`: returns as soon as the job and its items are stored. */
  submit(body: CreateJobRequest, options?: SubmitOptions): Promise<CreatedJob>;
  /**
   * `POST /jobs?dryRun=true`: the estimate of a job, nothing stored or called. Throws
   * {@link JobsApiContractError} if the server created the job instead (one that predates dry runs).
   */
  estimate(body: CreateJobRequest, options?: { signal?: AbortSignal }): Promise<JobEstimate>;
  /** `GET /jobs/{id}`. */
  get(id: string, options?: { signal?: AbortSignal }): Promise<JobView>;
  /** Polls `GET /jobs/{id}` until `until` holds (by default: the job is terminal); returns that job. */
  waitFor(id: string, options: WaitOptions): Promise<JobView>;
  /** `GET /jobs/{id}/results`: one page, in input order. */
  resultsPage(id: string, options?: ResultsPageOptions): Promise<ResultsPage>;
  /**
   * `GET /jobs/{id}/results?format=jsonl`: every entry in input order, parsed line by line as it
   * arrives (the body is never held whole). The request is sent on the first iteration.
   */
  resultsJsonl(id: string, options?: { signal?: AbortSignal }): AsyncIterable<ResultEntry>;
  /**
   * `GET /jobs/{id}/events`: a `result` event per finished item as it finishes, then `done` with the
   * job; the iteration ends with the stream. Events of other names are skipped, as EventSource does.
   */
  events(id: string, options?: EventsOptions): AsyncIterable<JobEvent>;
  /** `POST /jobs/{id}/cancel`: pending items end as cancelled; returns the job. */
  cancel(id: string, options?: { signal?: AbortSignal }): Promise<JobView>;
  /**
   * `POST /jobs/{id}/retry`: a finished job's failed and cancelled items as a new job (its view says
   * `retryOf`); with `body.requests` or `body.prompts`, only the lines whose request changed. The
   * same `idempotencyKey` and body return the same new job.
   */
  retry(id: string, body?: RetryJobRequest, options?: SubmitOptions): Promise<CreatedJob>;
  /** `GET /jobs`: one page of the caller's jobs, newest first. */
  list(options?: ListOptions): Promise<JobList>;
  /**
   * `GET /callback-key`: the caller's own callback key (`whsec_…`), which every callback of their
   * jobs is signed with; check callbacks with `verifyCallback` (./webhooks.ts). A secret: never log it.
   */
  callbackKey(options?: { signal?: AbortSignal }): Promise<CallbackKey>;
}
