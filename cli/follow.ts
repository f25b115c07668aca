/**
 * Follows a job's event stream (`GET /jobs/{id}/events`) to its `done` event, as EventSource would:
 * a stream that drops or ends early is opened again with `Last-Event-ID` set to the last event
 * received, so no result is missed or counted twice. Gives up when the API stays unreachable for
 * `outageMs`, or at once on an answer that will not change by asking again (4xx, a contract error).
 */
import { JobsApiContractError, JobsApiError, type JobsClient, sleep } from '../functions/api/client.js';
import type { JobView, ResultLine } from '../functions/api/jobs.js';
import { CliError } from './exit-codes.js';

export interface FollowOptions {
  client: JobsClient;
  id: string;
  /** Resume after this event, e.g. when watching again. */
  lastEventId?: string;
  signal: AbortSignal;
  onResult: (line: ResultLine, eventId: string | undefined) => void;
  /** Before each reconnect: why the stream was lost, and where it resumes. */
  onResume?: (info: { error: unknown; lastEventId: string | undefined; attempt: number }) => void;
  /** How long the stream may stay lost before giving up; 60 s by default. */
  outageMs?: number;
}

/** The stream ended without its `done` event: a proxy or load balancer closed it. */
export class StreamEndedError extends Error {
  constructor() {
    super('the event stream ended before the job did');
    this.name = 'StreamEndedError';
  }
}

/** Returns the job as the `done` event carried it. */
export async function followEvents(options: FollowOptions): Promise<JobView> {
  const { client, id, signal } = options;
  const outageMs = options.outageMs ?? 60_000;
  let lastEventId = options.lastEventId;
  let lostSince: number | undefined;
  let attempt = 0;
  for (;;) {
    try {
      for await (const event of client.events(id, { signal, ...(lastEventId ? { lastEventId } : {}) })) {
        lostSince = undefined;
        attempt = 0;
        if (event.event === 'done') return event.data;
        if (event.id) lastEventId = event.id;
        options.onResult(event.data, event.id);
      }
      throw new StreamEndedError();
    } catch (err) {
      if (signal.aborted || !worthRetrying(err)) throw err;
      lostSince ??= Date.now();
      if (Date.now() - lostSince > outageMs) throw err;
      attempt++;
      options.onResume?.({ error: err, lastEventId, attempt });
      await sleep(Math.min(5000, 250 * 2 ** (attempt - 1)), signal);
    }
  }
}

/** A dropped connection, a 5xx or a 429 may pass; a 4xx, a contract error or no credentials will not. */
function worthRetrying(err: unknown): boolean {
  if (err instanceof CliError || err instanceof JobsApiContractError) return false;
  if (err instanceof JobsApiError) return err.status >= 500 || err.status === 429 || err.status === 408;
  return true;
}
