import { LIMITS } from '../api/jobs.js';
import type { PipelineFields } from '../api/pipeline.js';
import { pipelineHeaderOf } from '../core/bucket-header.js';
import { firstLineModel } from '../core/bucket-input.js';
import { maybeGunzip, splitLines } from '../platform/jsonl.js';
import type { ObjectStore } from '../platform/object-store.js';

/** What the start of a bucket file says before its items are read. */
export interface FileHead {
  /** The pipeline its header line declares (core/bucket-header.ts), if the file has one. */
  pipeline?: PipelineFields;
  /** That header's line number: the line the item reader skips. */
  headerLine?: number;
  /** The model the first item line names (`request.model`): the job's when the metadata names none. */
  firstModel?: string;
}

/**
 * Reads a file's first non-blank line, and the next one when the first is a pipeline header, and no
 * further: whether the file is a pipeline, and the model its first item names. A bad header is the
 * file's `problem` (the file is refused whole). A missing generation throws (404) as any read does.
 */
export async function readFileHead(
  name: string,
  generation: string,
  objects: Pick<ObjectStore, 'read'>,
): Promise<FileHead | { problem: string }> {
  const source = maybeGunzip(objects.read(name, { generation }));
  const head: FileHead = {};
  for await (const line of splitLines(source, LIMITS.maxItemBytes)) {
    if (line.text !== undefined && line.text.trim() === '') continue;
    if (head.headerLine === undefined) {
      const header = pipelineHeaderOf(line.text, line.lineNumber);
      if (header && 'problem' in header) return header;
      if (header) {
        head.pipeline = header.fields;
        head.headerLine = line.lineNumber;
        continue;
      }
    }
    const model = firstLineModel(line.text);
    return model === undefined ? head : { ...head, firstModel: model };
  }
  return head;
}
