import { sleep } from '../api/sleep.js';
import { isTerminalJob } from '../core/jobs.js';
import type { Caller } from '../platform/caller.js';
import { decodeEventId, encodeEventId, finishedEvents, unitStreamsOf } from './finished-events.js';
import { type IngestDeps, ownedJob, withQuota } from './handler.js';

/** Finished items read per round: up to half a MiB each inline, so a round stays near 50 MiB at most. */
const EVENTS_PAGE = 100;

/** How long after an outcome's commit the event stream sends it (see `streamEvents`). */
export const EVENTS_SETTLE_MS = 1000;

/**
 * `GET /jobs/{id}/events`: one `result` event per finished item as they finish (a pipeline's items
 * also a `step` event per unit, ./finished-events.ts), then a `done` event
 * with the job's summary, sent only once its counts are final (every item ended: the job terminal
 * and no cancel still sweeping). `id:` fields make it resumable with `Last-Event-ID`.
 */
export async function* streamEvents(
  jobId: string,
  lastEventId: string | undefined,
  caller: Caller,
  deps: IngestDeps,
  signal?: AbortSignal,
): AsyncGenerator<string> {
  const owned = await ownedJob(jobId, caller, deps);
  // A pipeline job's events are merged from its unit jobs too (./finished-events.ts).
  const streams = unitStreamsOf(owned);
  let cursor = decodeEventId(lastEventId, streams);
  const interval = deps.pollIntervalMs ?? 250;
  let idleSince = Date.now();
  yield `retry: 2000\n\n`;
  while (!signal?.aborted) {
    // Read the job before the items: if it was settled then, this page holds every remaining result.
    // Settled is terminal with final counts: a cancel still sweeping (`cancelPending`) is terminal,
    // but its items are still turning cancelled and its counts still move.
    const job = await deps.lifecycle.getJob(jobId);
    const settled = job && isTerminalJob(job.status) && !job.cancelPending;
    // While items still finish, read only those finished a moment ago: outcomes committed at the same
    // time may become visible out of commit order, and one seen late behind the cursor would be lost.
    const upToMicros = settled ? undefined : (Date.now() - EVENTS_SETTLE_MS) * 1000;
    const page = job ? await finishedEvents(deps.lifecycle, job, cursor, EVENTS_PAGE, upToMicros) : [];
    for (const event of page) {
      cursor = event.cursor;
      const id = encodeEventId(cursor, cursor.stream > 0 ? streams[cursor.stream - 1] : undefined);
      yield `id: ${id}\nevent: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
    }
    if (page.length > 0) idleSince = Date.now();
    if (page.length < EVENTS_PAGE && settled) {
      const view = await deps.lifecycle.view(jobId);
      yield `event: done\ndata: ${JSON.stringify(view && withQuota(view, deps))}\n\n`;
      return;
    }
    if (page.length < EVENTS_PAGE) {
      if (Date.now() - idleSince > 15_000) {
        idleSince = Date.now();
        yield `: keep-alive\n\n`;
      }
      await sleep(interval);
    }
  }
}
