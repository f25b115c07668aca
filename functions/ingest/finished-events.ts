import { finishCursorOf, type JobRecord } from '../core/jobs.js';
import { unitJobId } from '../core/pipeline.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import { ValidationError } from '../platform/errors.js';

/**
 * The events of `GET /jobs/{id}/events`, read a page at a time in the order things finished. An
 * ordinary job's are its items' `result` events. A pipeline job's are merged from its items and its
 * unit jobs' units (core/pipeline.ts): a `step` event per unit as it ends (`stepEventSchema`), and
 * an item's `result` after its last step's (its outcome is written after every unit it read).
 *
 * The order is (finish time, item id, stream): the item's own stream first, then its units by step
 * and branch. An event's id is that position (`{micros}.{itemId}` for a result, with `.s{n}b{m}` for
 * a step), and `Last-Event-ID` resumes after it in every stream at once.
 */

/** Where a stream of events resumes: after this finish time and item (and stream, for equal ones). */
export interface EventCursor {
  finishedAtMicros: number;
  itemId: string;
  /** 0: the job's items; 1 + n: the n-th unit job (step then branch order). */
  stream: number;
}

/** One event, ready to send. */
export interface FinishedEvent {
  cursor: EventCursor;
  event: 'result' | 'step';
  data: unknown;
}

export function encodeEventId(cursor: EventCursor, streamName?: string): string {
  return `${cursor.finishedAtMicros}.${cursor.itemId}${streamName ? `.${streamName}` : ''}`;
}

/** The cursor an event id names; a 400 for one this API did not send. */
export function decodeEventId(id: string | undefined, streams: readonly string[]): EventCursor | undefined {
  if (!id) return undefined;
  // Bounded: a number too big for a cursor must fail here, before the stream's headers go out.
  const m = /^(\d{1,17})\.(\d{9})(?:\.(s\d{1,2}b\d{1,2}))?$/.exec(id.trim());
  const stream = m?.[3] === undefined ? 0 : streams.indexOf(m[3]) + 1;
  if (!m || !Number.isSafeInteger(Number(m[1])) || stream < 0 || (m[3] !== undefined && stream === 0))
    throw new ValidationError('Last-Event-ID is not valid.', [
      { field: 'Last-Event-ID', message: 'invalid' },
    ]);
  return { finishedAtMicros: Number(m[1]), itemId: m[2]!, stream };
}

/** The unit streams of a job: `s{n}b{m}` of each (step, branch), in order (none for an ordinary job). */
export function unitStreamsOf(job: Pick<JobRecord, 'pipeline'>): string[] {
  return job.pipeline?.steps.flatMap((step, n) => step.branches.map((_, m) => `s${n}b${m}`)) ?? [];
}

const after = (a: EventCursor, b: EventCursor | undefined) =>
  !b ||
  a.finishedAtMicros > b.finishedAtMicros ||
  (a.finishedAtMicros === b.finishedAtMicros &&
    (a.itemId > b.itemId || (a.itemId === b.itemId && a.stream > b.stream)));

/** The next `limit` events after `cursor`, finished at or before `upToMicros` when given. */
export async function finishedEvents(
  lifecycle: Lifecycle,
  job: JobRecord,
  cursor: EventCursor | undefined,
  limit: number,
  upToMicros?: number,
): Promise<FinishedEvent[]> {
  const streams = unitStreamsOf(job);
  const pages = await Promise.all(
    [job.id, ...streams.map((_, k) => unitJobIdOf(job, k))].map(async (jobId, stream) => {
      // Equal (time, item) in a later stream is left out: two commits of one item's units do not
      // share a microsecond.
      const from = cursor && { finishedAtMicros: cursor.finishedAtMicros, itemId: cursor.itemId };
      const page = await lifecycle.listFinished(jobId, from, limit, upToMicros);
      return page.map((item) => ({ item, stream, at: { ...finishCursorOf(item)!, stream } }));
    }),
  );
  const merged = pages
    .flat()
    .filter((e) => after(e.at, cursor))
    .sort((a, b) => (after(a.at, b.at) ? 1 : -1))
    .slice(0, limit);
  return Promise.all(
    merged.map(async ({ item, stream, at }) => {
      const line = await lifecycle.resultEntry(item);
      if (stream === 0) return { cursor: at, event: 'result' as const, data: line };
      const { step, branch } = unitOf(job, stream - 1);
      const { response, error } = line as { response?: unknown; error?: unknown };
      return {
        cursor: at,
        event: 'step' as const,
        data: {
          key: item.key,
          index: item.index,
          step: job.pipeline!.steps[step]!.name,
          branch,
          model: job.pipeline!.steps[step]!.branches[branch]!.model,
          ...(error !== undefined ? { error } : { response }),
        },
      };
    }),
  );
}

function unitOf(job: JobRecord, k: number): { step: number; branch: number } {
  let left = k;
  for (const [step, s] of job.pipeline!.steps.entries()) {
    if (left < s.branches.length) return { step, branch: left };
    left -= s.branches.length;
  }
  throw new Error(`no unit stream ${k}`);
}

function unitJobIdOf(job: JobRecord, k: number): string {
  const { step, branch } = unitOf(job, k);
  return unitJobId(job.id, step, branch);
}
