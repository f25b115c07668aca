/**
 * Re-runs, pure: which items of a finished job a retry (`POST /jobs/{id}/retry`) runs again, and how
 * they become the items of the new job.
 *
 * - Without a new prompt set, every item that has no answer: `failed`, `cancelled`, and `pending`
 *   ones (only a cancelled job still being swept has those, and they are about to end cancelled).
 * - With a new prompt set (`--only-changed`), every line whose request differs from the original
 *   item of the same key, by {@link requestHash}, whatever that item's state; a line whose key the
 *   original job did not have is new, so changed too.
 *
 * The new job's items keep their original `key` (and `keyField`), so results join by key; their
 * `index` is their position in the new job (0..n-1, in the original order), as for any job: the
 * result line's shape does not change.
 */
import { createHash } from 'node:crypto';
import { type ItemRecord, itemIdForIndex, type MediaRef, type NewItem } from './jobs.js';

/** JSON with object keys sorted at every depth: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * SHA-256 (hex) of an item's request and media in canonical JSON: what Gemini would be asked. The
 * same request written with its keys in another order hashes the same.
 */
export function requestHash(item: { request: unknown; media?: MediaRef[] }): string {
  return createHash('sha256')
    .update(canonicalJson({ request: item.request, media: item.media ?? [] }))
    .digest('hex');
}

/** True for an item a plain retry runs again: it has no answer. */
export function needsRerun(item: Pick<ItemRecord, 'state'>): boolean {
  return item.state !== 'succeeded';
}

/** An original item as the comparison needs it: its key and its request's hash. */
export interface OriginalRequest {
  key: string;
  hash: string;
}

/**
 * The lines of a new prompt set whose request changed against the original job's items (by key),
 * in their order: a key the original lacks counts as changed.
 */
export function changedItems<T extends { key: string; request: unknown; media?: MediaRef[] }>(
  originals: Iterable<OriginalRequest>,
  next: readonly T[],
): T[] {
  const before = new Map<string, string>();
  for (const o of originals) before.set(o.key, o.hash);
  return next.filter((item) => before.get(item.key) !== requestHash(item));
}

/**
 * The items of a re-run job: the chosen items with their key, request, media and estimate, numbered
 * 0..n-1 in the order given. What the original run recorded (outcome, bad-line error, batch part)
 * stays behind.
 */
export function rerunItems(chosen: readonly NewItem[]): NewItem[] {
  return chosen.map((item, index) => ({
    id: itemIdForIndex(index),
    index,
    key: item.key,
    ...(item.keyField ? { keyField: item.keyField } : {}),
    request: item.request,
    ...(item.media ? { media: item.media } : {}),
    estimatedTokens: item.estimatedTokens,
  }));
}
