/**
 * Watches a job to its end: the event stream drives the progress (one event per finished item), and
 * `GET /jobs/{id}` is read now and then for what events do not carry (tokens, cost, quota, notices):
 * at most every 2 s while results arrive (and for a pipeline, whose per-step counts only the view
 * carries), every 5 s while none do. It never polls for progress otherwise.
 */
import type { JobsClient } from '../functions/api/client.js';
import { isTerminalStatus, type JobView, type ResultLine } from '../functions/api/jobs.js';
import { followEvents } from './follow.js';
import { JobProgress } from './progress.js';
import type { Renderer } from './render.js';

export interface WatchOptions {
  client: JobsClient;
  id: string;
  renderer: Renderer;
  signal: AbortSignal;
  /** The job as already read, if it was. */
  initial?: JobView;
  /** How long the stream may stay lost before giving up. */
  outageMs?: number;
}

export interface Watched {
  job: JobView;
  /** Times the stream was opened again after a drop. */
  resumes: number;
  /** The first few failed items seen on the stream, to show what went wrong. */
  failures: ResultLine[];
}

const FAILURES_KEPT = 3;

export async function watchJob(options: WatchOptions): Promise<Watched> {
  const { client, id, renderer, signal } = options;
  const initial = options.initial ?? (await client.get(id, { signal }));
  const progress = new JobProgress(initial, Date.now());
  renderer.update(progress.snapshot(Date.now()));
  if (isTerminalStatus(initial.status)) {
    renderer.stop(progress.snapshot(Date.now()));
    return { job: initial, resumes: 0, failures: [] };
  }

  let lastRead = Date.now();
  let resultsSinceRead = 0;
  let reading = false;
  const refresh = async () => {
    reading = true;
    try {
      const view = await client.get(id, { signal });
      progress.job(view, Date.now());
      lastRead = Date.now();
      resultsSinceRead = 0;
    } catch {
      // The stream decides whether the API is gone; a lost read is just skipped.
    } finally {
      reading = false;
    }
  };
  const timer = setInterval(() => {
    const since = Date.now() - lastRead;
    // A pipeline's steps end long before its items do: their bars move with the view, every 2 s.
    const moving = resultsSinceRead > 0 || progress.latest.steps !== undefined;
    if (!reading && ((moving && since >= 2000) || since >= 5000)) void refresh();
    renderer.update(progress.snapshot(Date.now()));
  }, 500);

  let resumes = 0;
  const failures: ResultLine[] = [];
  try {
    const done = await followEvents({
      client,
      id,
      signal,
      ...(options.outageMs !== undefined ? { outageMs: options.outageMs } : {}),
      onResult: (line) => {
        progress.result(line, Date.now());
        resultsSinceRead++;
        if ('error' in line && line.error.status !== 'CANCELLED' && failures.length < FAILURES_KEPT) {
          failures.push(line);
        }
        renderer.update(progress.snapshot(Date.now()));
      },
      onResume: ({ error, lastEventId, attempt }) => {
        resumes++;
        const why = error instanceof Error ? error.message : String(error);
        renderer.note(
          `stream lost (${why}); resuming ${lastEventId ? `after event ${lastEventId}` : 'from the start'}, attempt ${attempt}`,
        );
      },
    });
    progress.job(done, Date.now());
    renderer.stop(progress.snapshot(Date.now()));
    return { job: progress.latest, resumes, failures };
  } catch (err) {
    renderer.stop(undefined);
    throw err;
  } finally {
    clearInterval(timer);
  }
}
