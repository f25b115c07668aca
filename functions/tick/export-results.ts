import { summaryObjectName } from '../core/bucket-input.js';
import { isTerminalJob } from '../core/jobs.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { Logger } from '../platform/logger.js';
import type { ObjectStore } from '../platform/object-store.js';
import type { JobsStore } from '../platform/store/jobs.js';

export interface ExportDeps {
  lifecycle: Pick<Lifecycle, 'view' | 'resultLines'>;
  jobs: Pick<JobsStore, 'listExportPending' | 'claimExport' | 'markExported'>;
  objects: Pick<ObjectStore, 'writeStream' | 'putJson'>;
  bucket: string;
  logger: Logger;
  now?: () => number;
}

/** How long one tick owns a job's export: ticks overlap, and one write of the file is enough. */
const EXPORT_LEASE_MS = 10 * 60_000;

/** Results files written per tick. */
const EXPORTS_PER_TICK = 10;

/**
 * Bucket jobs that have ended get their results: `results/<path under inbox>`, one result line per
 * input line in input order (gzipped when the input was), then `<that>.summary.json` with the job's
 * status, counts, usage, cost and the paths its items took. Written whole or not at all (a streamed
 * upload), then the job is marked exported: a tick that stops halfway writes them again.
 */
export async function exportResults(deps: ExportDeps): Promise<number> {
  let written = 0;
  for (const job of await deps.jobs.listExportPending(EXPORTS_PER_TICK)) {
    if (!isTerminalJob(job.status) || job.cancelPending || !job.output) continue;
    const now = (deps.now ?? Date.now)();
    if (!(await deps.jobs.claimExport(job, now, now + EXPORT_LEASE_MS))) continue;
    const log = deps.logger.child({ jobId: job.id });
    try {
      await deps.objects.writeStream(job.output, deps.lifecycle.resultLines(job.id), {
        contentType: 'application/jsonl',
        gzip: job.output.endsWith('.gz'),
      });
      const view = await deps.lifecycle.view(job.id);
      await deps.objects.putJson(summaryObjectName(job.output), {
        job: job.id,
        source: job.source,
        results: `gs://${deps.bucket}/${job.output}`,
        ...view,
      });
      await deps.jobs.markExported(job.id);
      written++;
      log.info({ event: 'job.exported', output: job.output }, 'results file written');
    } catch (err) {
      log.error(
        { event: 'job.export_failed', err: (err as Error).message },
        'results file not written; next tick tries again',
      );
    }
  }
  return written;
}
