/**
 * Bucket input, pure: which objects become jobs, the options a file carries in its object metadata,
 * and one JSONL line → one item (or the error line that stands for it). Intake and the tick's Batch API
 * both read lines with `parseInputLine`, so a line means the same wherever it is read.
 */
import { z } from 'zod';
import { type ItemError, LIMITS, requestItemSchema } from '../api/jobs.js';
import type { BatchFallback, RequestedMode } from './batch.js';
import { buildItem, type ItemDefaults, type ItemRules, requestModel } from './build-item.js';
import type { Content, NewItem } from './jobs.js';
import { looksLikeOwnerPrefix } from './owner-prefix.js';

/** Where users drop files; the project's own prefixes are never input (the loop guard). */
export const INBOX_PREFIX = 'inbox/';
export const RESULTS_PREFIX = 'results/';
export const STAGING_PREFIX = 'staging/';

/** Why an object is not a job, or undefined when it is one (a guard first, as triggers should). */
export function skipReason(bucket: string, name: string, expectedBucket: string): string | undefined {
  if (bucket !== expectedBucket) return `bucket ${bucket} is not the project's bucket`;
  if (name.startsWith(RESULTS_PREFIX) || name.startsWith(STAGING_PREFIX)) return 'our own output';
  if (!name.startsWith(INBOX_PREFIX)) return 'not under inbox/';
  if (!/\.jsonl(\.gz)?$/.test(name)) return 'not a .jsonl or .jsonl.gz file';
  if (name.endsWith('/')) return 'a folder placeholder';
  // Object names are flat, but results/<same path> is copied to file systems by users' tools.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/(^|\/)\.\.?(\/|$)|\/\/|\\|[\u0000-\u001f\u007f]/.test(name)) return 'a path trick in the name';
  return undefined;
}

/**
 * Who a bucket file belongs to, from its path: `inbox/{owner prefix}/…` is the job of the bucket
 * owner with that prefix (`owners`: prefix → identity, from FANOUT_BUCKET_OWNERS), and its results
 * go to `results/{owner prefix}/…`. A file straight under `inbox/` or under a folder that is not an
 * owner prefix is an owner-less job, as before owners: only someone with rights on the whole bucket
 * can put it there, and only admins see it. A folder that looks like an owner prefix but belongs to
 * no configured owner is refused (`problem`): it is an owner removed from the list, or a typo, and
 * must not become an admin job.
 */
export function bucketOwnerOf(
  name: string,
  owners: Readonly<Record<string, string>>,
): { owner?: string } | { problem: string } {
  const folder = name.slice(INBOX_PREFIX.length).split('/');
  if (folder.length < 2 || !looksLikeOwnerPrefix(folder[0]!)) return {};
  const owner = Object.hasOwn(owners, folder[0]!) ? owners[folder[0]!] : undefined;
  if (owner === undefined) {
    return {
      problem: `inbox/${folder[0]}/ is the folder of no bucket owner of this deployment (FANOUT_BUCKET_OWNERS)`,
    };
  }
  return { owner };
}

/** `inbox/a/b.jsonl` → `results/a/b.jsonl` (same name, gzipped when the input was). */
export function resultsObjectName(inputName: string): string {
  return `${RESULTS_PREFIX}${inputName.slice(INBOX_PREFIX.length)}`;
}

/** `results/a/b.jsonl` → `results/a/b.jsonl.summary.json`. */
export function summaryObjectName(resultsName: string): string {
  return `${resultsName}.summary.json`;
}

const jsonRecord = z.string().transform((s, ctx) => {
  try {
    const v: unknown = JSON.parse(s);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  ctx.addIssue({ code: 'custom', message: 'must be a JSON object, e.g. {"temperature":0}' });
  return z.NEVER;
});

/**
 * A file's options, from its object metadata (custom metadata `model`, `mode`, `config`,
 * `systemInstruction`, `onBatchFailure`; set with `gcloud storage cp --custom-metadata=…`). Metadata,
 * not a sidecar file: it arrives with the object in the same event, so there is no race between the
 * two. Other metadata keys are left alone.
 */
export const fileOptionsSchema = z.object({
  model: z.string().min(1).optional(),
  mode: z.enum(['auto', 'realtime', 'batch']).default('auto'),
  config: jsonRecord.optional(),
  systemInstruction: z.string().min(1).optional(),
  onBatchFailure: z.enum(['realtime', 'fail']).default('realtime'),
});

export interface FileOptions {
  model?: string | undefined;
  mode: RequestedMode;
  config?: Record<string, unknown> | undefined;
  systemInstruction?: string | undefined;
  onBatchFailure: BatchFallback;
}

/** The options of a file, or the message saying which metadata key is wrong. */
export function parseFileOptions(
  metadata: Record<string, unknown> | undefined,
): FileOptions | { problem: string } {
  const parsed = fileOptionsSchema.safeParse(metadata ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  return { problem: `object metadata ${String(issue.path[0] ?? '')}: ${issue.message}` };
}

/** The defaults a file's options add to every line's request. */
export function lineDefaults(options: Pick<FileOptions, 'config' | 'systemInstruction'>): ItemDefaults {
  const systemInstruction: Content | undefined = options.systemInstruction
    ? { parts: [{ text: options.systemInstruction }] }
    : undefined;
  return {
    ...(options.config ? { config: options.config } : {}),
    ...(systemInstruction ? { systemInstruction } : {}),
  };
}

/**
 * A line that became an item, or the error line that stands for it (still an item: it has a key,
 * named as the line named it).
 */
export type ParsedLine =
  | { ok: true; item: NewItem }
  | { ok: false; key: string; keyField?: 'custom_id'; error: ItemError };

function badLine(key: string, lineNumber: number, message: string, keyField?: 'custom_id'): ParsedLine {
  return {
    ok: false,
    key,
    ...(keyField ? { keyField } : {}),
    error: { code: 400, status: 'INVALID_ARGUMENT', message: `line ${lineNumber}: ${message}` },
  };
}

/** The key a line names (`key`, or `custom_id` as OpenAI's Batch files do), if it is a usable one. */
function namedKey(json: unknown): { key: string; keyField?: 'custom_id' } | undefined {
  if (!json || typeof json !== 'object') return undefined;
  const { key, custom_id } = json as { key?: unknown; custom_id?: unknown };
  const usable = (k: unknown): k is string =>
    typeof k === 'string' && k.length > 0 && k.length <= LIMITS.maxKeyLength;
  if (usable(key)) return { key };
  if (usable(custom_id)) return { key: custom_id, keyField: 'custom_id' };
  return undefined;
}

/**
 * The model a file's first line names (`request.model`, as Batch API lines do), without `models/`:
 * the job's model when the file's metadata names none. Undefined for anything else.
 */
export function firstLineModel(text: string | undefined): string | undefined {
  try {
    return text === undefined
      ? undefined
      : requestModel((JSON.parse(text) as { request?: unknown })?.request);
  } catch {
    return undefined;
  }
}

/**
 * One input line: `{"key"?, "prompt"}` or `{"key", "request"}`, either with `media`; the key may
 * be named `custom_id` instead (OpenAI's Batch format: `{"custom_id", "request"}`), and its result
 * line names it so too. The key defaults to the line's number in the file (1-based). A line whose
 * `request.model` is not the job's (`rules.model`) is an error line. `index` is the item's place
 * among the file's non-blank lines. A line over `LIMITS.maxItemBytes` arrives as `tooLong` (its
 * bytes were never held).
 */
export function parseInputLine(
  line: { text?: string; tooLong?: number },
  lineNumber: number,
  index: number,
  defaults: ItemDefaults,
  rules?: ItemRules,
): ParsedLine {
  const fallbackKey = String(lineNumber);
  if (line.tooLong !== undefined || line.text === undefined) {
    return badLine(fallbackKey, lineNumber, `the line is over ${LIMITS.maxItemBytes} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(line.text);
  } catch {
    return badLine(fallbackKey, lineNumber, 'not valid JSON');
  }
  const named = namedKey(json);
  const key = named?.key ?? fallbackKey;
  const parsed = requestItemSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.map(String).join('.');
    return badLine(key, lineNumber, field ? `${field} ${issue.message}` : issue.message, named?.keyField);
  }
  const built = buildItem(parsed.data, index, key, defaults, rules);
  if ('problem' in built) return badLine(key, lineNumber, built.problem, named?.keyField);
  return { ok: true, item: built };
}

/** The error line of a key seen before in the same file. */
export function duplicateKeyLine(key: string, lineNumber: number, keyField?: 'custom_id'): ParsedLine {
  return badLine(key, lineNumber, `duplicate key "${key}"`, keyField);
}
