import { LIMITS } from '../api/jobs.js';
import { PartPlanner, partLimitsFor } from '../core/batch.js';
import {
  duplicateKeyLine,
  type FileOptions,
  lineDefaults,
  type ParsedLine,
  parseInputLine,
} from '../core/bucket-input.js';
import { itemIdForIndex, type NewItem } from '../core/jobs.js';
import { mediaLocationsFor } from '../core/owner-prefix.js';
import { type Quotas, requestLimitsFor } from '../core/quotas.js';
import type { ItemRules } from '../core/requests.js';
import { maybeGunzip, splitLines } from '../platform/jsonl.js';
import type { ObjectStore } from '../platform/object-store.js';
import { type BucketCaps, boundedBytes, checkLineCap } from './caps.js';

/** Items written per Firestore bulk: a file is never held whole. */
const CHUNK = 500;

/** What reading a file's lines needs of intake's dependencies (./handler.ts). */
export interface ReadDeps {
  objects: Pick<ObjectStore, 'read'>;
  quotas: Quotas;
  mediaGcsAllowed?: readonly string[];
  mediaGcsShared?: readonly string[];
  caps?: BucketCaps;
}

/**
 * Streams the file into items, a chunk at a time; plans the batches as it goes. A pipeline header
 * (`headerLine`) is not an item: no index, no result line, no bytes in a batch.
 */
export async function readLines(
  store: (chunk: NewItem[]) => Promise<void>,
  file: { name: string; generation: string; headerLine?: number | undefined },
  model: string,
  options: FileOptions,
  owner: string | undefined,
  deps: ReadDeps,
) {
  const defaults = lineDefaults(options);
  const rules: ItemRules = {
    limits: requestLimitsFor(deps.quotas, model),
    model,
    ...(deps.mediaGcsAllowed
      ? {
          mediaGcsAllowed: mediaLocationsFor(
            { roots: deps.mediaGcsAllowed, shared: deps.mediaGcsShared ?? [] },
            owner,
          ),
        }
      : {}),
  };
  const planner = new PartPlanner(partLimitsFor(model, deps.quotas));
  const keys = new Set<string>();
  let chunk: NewItem[] = [];
  let index = 0;
  let bornFailed = 0;
  let batchable = 0;
  let lastLine = 0;
  const inflated = maybeGunzip(deps.objects.read(file.name, { generation: file.generation }));
  const source = deps.caps ? boundedBytes(inflated, deps.caps.maxBytes, () => lastLine + 1) : inflated;
  for await (const line of splitLines(source, LIMITS.maxItemBytes)) {
    lastLine = line.lineNumber;
    if (deps.caps) checkLineCap(line.lineNumber, deps.caps);
    if (line.text !== undefined && line.text.trim() === '') continue;
    if (line.lineNumber === file.headerLine) continue;
    let parsed: ParsedLine = parseInputLine(line, line.lineNumber, index, defaults, rules);
    if (parsed.ok && keys.has(parsed.item.key))
      parsed = duplicateKeyLine(parsed.item.key, line.lineNumber, parsed.item.keyField);
    else if (parsed.ok) keys.add(parsed.item.key);
    let item: NewItem;
    if (parsed.ok) {
      item = parsed.item;
    } else {
      bornFailed++;
      item = {
        id: itemIdForIndex(index),
        index,
        key: parsed.key,
        ...(parsed.keyField ? { keyField: parsed.keyField } : {}),
        request: { contents: [] },
        estimatedTokens: 0,
        error: parsed.error,
      };
    }
    if (planner.place(item, line.fromByte, line.toByte)) batchable++;
    chunk.push(item);
    if (chunk.length >= CHUNK) {
      await store(chunk);
      chunk = [];
    }
    index++;
  }
  if (chunk.length > 0) await store(chunk);
  return { total: index, bornFailed, batchable, parts: planner.finish() };
}
