import { LIMITS } from '../../api/jobs.js';
import { isBatchable } from '../../core/batch.js';
import { looksLikePipelineHeader } from '../../core/bucket-header.js';
import { parseInputLine } from '../../core/bucket-input.js';
import type { JobRecord } from '../../core/jobs.js';
import type { ItemRules } from '../../core/requests.js';
import { maybeGunzip, splitLines } from '../../platform/jsonl.js';
import type { ObjectStore } from '../../platform/object-store.js';
import type { BatchRun } from '../../platform/store/batch-runs.js';

/**
 * A run's share of the job's staged set as Batch API input lines `{"key": itemId, "request"}`,
 * streamed from the bucket: a byte range of a plain file, or the whole of a gzip one read past the
 * lines before the range. Lines are read exactly as intake read them (`parseInputLine`, blank lines
 * skipped), so line n is item n; bad lines and items with media are not in a batch and are skipped,
 * and so are the lines the part names as stored failed (`skip`: duplicate keys parse as well as
 * their first line, and would be paid for). A pipeline file's header line (its first non-blank
 * line, core/bucket-header.ts) is no item: a byte range never holds it, a whole read skips it.
 */
export async function* stagedLines(
  run: BatchRun,
  job: Pick<JobRecord, 'staged'>,
  objects: Pick<ObjectStore, 'read'>,
  /** The model's request limits: a line intake failed for asking too much is not sent either. */
  rules?: ItemRules,
): AsyncGenerator<string> {
  const staged = job.staged;
  if (!staged) throw new Error(`job of run ${run.id} has no staged set`);
  const ranged = !staged.object.endsWith('.gz');
  const bytes = objects.read(staged.object, {
    ...(staged.generation ? { generation: staged.generation } : {}),
    ...(ranged ? { start: run.fromByte, end: run.toByte - 1 } : {}),
  });
  const skip = new Set(run.skip ?? []);
  let index = ranged ? run.fromIndex : 0;
  let first = !ranged;
  for await (const line of splitLines(maybeGunzip(bytes), LIMITS.maxItemBytes)) {
    if (line.text !== undefined && line.text.trim() === '') continue;
    const header = first && looksLikePipelineHeader(line.text);
    first = false;
    if (header) continue;
    const i = index++;
    if (i < run.fromIndex) continue;
    if (i >= run.toIndex) return;
    if (skip.has(i)) continue;
    const parsed = parseInputLine(line, line.lineNumber, i, staged.defaults ?? {}, rules);
    if (!parsed.ok || !isBatchable(parsed.item)) continue;
    yield `${JSON.stringify({ key: parsed.item.id, request: parsed.item.request })}\n`;
  }
}

/**
 * The bytes `lines` take as UTF-8: a first pass over a run's upload, whose size the Files API is
 * told at upload start (the lines are written anew from the staged ones, so the staged byte range
 * is not their size). Memory holds one line.
 */
export async function byteLengthOf(lines: AsyncIterable<string>): Promise<number> {
  let bytes = 0;
  for await (const line of lines) bytes += Buffer.byteLength(line);
  return bytes;
}
