/**
 * A bucket file's pipeline header, pure: a JSONL file whose FIRST non-blank line is
 * `{"steps": [...], "onStepError"?: "fail"|"continue"}` (no `prompt`, `request`, `key` or `custom_id`:
 * it is not an item) is a pipeline job, each later line an item run through those steps, as
 * `POST /jobs` with `steps` would run it. The header is not an item: it has no index and no result
 * line (indexes count items), and its bytes belong to no batch. It is checked with the contract's own
 * schema (api/pipeline-fields.ts); a bad header refuses the whole file, as bad object metadata does.
 * Only the first non-blank line can be a header: a `steps` line further down is an item, and a bad one.
 */

import type { PipelineFields } from '../api/pipeline.js';
import { checkPipelineFields, describePipelineProblems } from '../api/pipeline-fields.js';

/** Fields that make a line an item, never a header. */
const ITEM_FIELDS = ['prompt', 'request', 'key', 'custom_id', 'media'] as const;

/** True when a line's text has the shape of a pipeline header: an object with `steps` and no item field. */
export function looksLikePipelineHeader(text: string | undefined): boolean {
  if (text === undefined || !text.includes('"steps"')) return false;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return false;
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return false;
  return Object.hasOwn(json, 'steps') && !ITEM_FIELDS.some((f) => Object.hasOwn(json, f));
}

/**
 * The pipeline a file's first non-blank line (number `lineNumber`) declares: undefined when it is an
 * ordinary item line, the fields when it is a good header, or the problem (naming the line and the
 * field) that refuses the file.
 */
export function pipelineHeaderOf(
  text: string | undefined,
  lineNumber: number,
): { fields: PipelineFields } | { problem: string } | undefined {
  if (!looksLikePipelineHeader(text)) return undefined;
  const checked = checkPipelineFields(JSON.parse(text!));
  if (checked.ok) return { fields: checked.fields };
  return { problem: `line ${lineNumber}: pipeline header: ${describePipelineProblems(checked.problems)}` };
}
