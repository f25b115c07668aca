/**
 * Ordering for Gemini's implicit cache, pure. Gemini bills input tokens that repeat a recent
 * request's prefix at the cached rate, from a model's minimum on (the caching page: 1,024 tokens for
 * 2.5 Flash, 4,096 for 2.5 Pro), and advises to put shared content first and to send same-prefix
 * requests close together. So the items of a page whose requests share a long prefix (the system
 * instruction, then the leading text of the contents) are planned back to back: grouped by a prefix
 * key, each group where its first item stood, items in index order within it. Results stay in input
 * order: they are read by index, not by when they were sent.
 */
import { createHash } from 'node:crypto';
import type { GenerateContentRequest } from './jobs.js';

/** The estimator's rule (core/tokens.ts): about 4 UTF-8 bytes a token. */
const BYTES_PER_TOKEN = 4;

/**
 * The text a request starts with, in the order Gemini reads it: the system instruction's text
 * parts, then the contents' text parts up to the first part that is not text (media breaks the
 * prefix a text key can see).
 */
export function leadingText(request: Pick<GenerateContentRequest, 'contents' | 'systemInstruction'>): string {
  const out: string[] = [];
  for (const part of request.systemInstruction?.parts ?? []) {
    if (typeof part.text === 'string') out.push(part.text);
  }
  for (const content of request.contents ?? []) {
    for (const part of content.parts ?? []) {
      if (typeof part.text !== 'string') return out.join('\n');
      out.push(part.text);
    }
  }
  return out.join('\n');
}

/**
 * The prefix key of a request: SHA-256 of its first `minTokens` tokens of leading text (by the
 * estimate), or undefined when its leading text is shorter than that (no implicit cache to gain).
 */
export function prefixKey(
  request: Pick<GenerateContentRequest, 'contents' | 'systemInstruction'>,
  minTokens: number,
): string | undefined {
  const bytes = Buffer.from(leadingText(request), 'utf8');
  const need = minTokens * BYTES_PER_TOKEN;
  if (bytes.length < need) return undefined;
  return createHash('sha256').update(bytes.subarray(0, need)).digest('hex');
}

/**
 * `items` grouped by prefix key (see the module comment): a stable order in which items sharing a
 * key are adjacent, each group at the place of its first item; items without a key keep theirs.
 */
export function orderByPrefix<T>(items: readonly T[], keyOf: (item: T) => string | undefined): T[] {
  const groups = new Map<string, T[]>();
  const order: T[][] = [];
  for (const item of items) {
    const key = keyOf(item);
    const group = key === undefined ? undefined : groups.get(key);
    if (group) {
      group.push(item);
      continue;
    }
    const fresh = [item];
    if (key !== undefined) groups.set(key, fresh);
    order.push(fresh);
  }
  return order.flat();
}
