import type { JobView } from '../functions/api/jobs.js';

/** One progress line: a bar, counts, throughput. */
export function progressLine(job: JobView, elapsedMs: number, width = 30): string {
  const { total, succeeded, failed, cancelled } = job.counts;
  const done = succeeded + failed + cancelled;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const rpm = elapsedMs > 0 ? Math.round((done / elapsedMs) * 60_000) : 0;
  const batches = job.batches?.length
    ? `  batches ${job.batches.map((b) => b.state.toLowerCase()).join(',')}`
    : '';
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}  ok ${succeeded}  failed ${failed}  ${rpm} req/min  ${(elapsedMs / 1000).toFixed(1)} s${batches}${job.notice ? `  (${job.notice})` : ''}`;
}
