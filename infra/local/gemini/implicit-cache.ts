import type { z } from 'zod';
import type { implicitCacheSchema } from './cost-config.js';
import { type TokenRule, textTokens } from './tokens.js';

/**
 * Implicit caching, as the Gemini API caching page describes it: on for 2.5 and newer models, a
 * request whose leading input repeats a recent request's prefix has that shared prefix served from
 * a cache (`usageMetadata.cachedContentTokenCount`, billed at the cached rate), from a per-model
 * minimum on (the page's table: 1,024 tokens for 2.5 Flash, 4,096 for 2.5 Pro; a forum report of the
 * API's own error gives 2,048 for 2.5 Flash-Lite). Google's advice: put shared content first and
 * send same-prefix requests close together.
 *
 * How long a prefix stays warm and how many stay warm at once are not documented: both are
 * settings here (`ttlMs`, `entries` per model), and the defaults are a hypothesis. The default of
 * one warm prefix per model makes "close together" strict: a request hits only when it shares a
 * prefix with the model's latest one, so interleaving two long prefixes earns nothing while sending
 * them in runs earns nearly every repeat. The leading input is read as text: the system
 * instruction's text parts, then the contents' text parts up to the first part that is not text.
 * Off by default (`enabled`), so the costs of runs that do not ask for it stay as they were.
 */
export type ImplicitCacheSettings = z.infer<typeof implicitCacheSchema>;

/** The leading text of a request (see the module comment). */
export function leadingRequestText(request: Record<string, unknown>): string {
  const out: string[] = [];
  const textsOf = (content: unknown): boolean => {
    const parts = (content as { parts?: unknown })?.parts;
    for (const part of Array.isArray(parts) ? parts : []) {
      const text = (part as { text?: unknown })?.text;
      if (typeof text !== 'string') return false;
      out.push(text);
    }
    return true;
  };
  if (request.systemInstruction !== undefined) textsOf(request.systemInstruction);
  for (const content of Array.isArray(request.contents) ? request.contents : []) {
    if (!textsOf(content)) break;
  }
  return out.join('\n');
}

function commonPrefixLength(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  // Never split a surrogate pair: the prefix is whole characters.
  if (i > 0 && i < n && a.charCodeAt(i - 1) >= 0xd800 && a.charCodeAt(i - 1) <= 0xdbff) i--;
  return i;
}

/** The warm prefixes per model, the latest first. */
export class ImplicitCache {
  private readonly warm = new Map<string, Array<{ text: string; atMs: number }>>();

  constructor(
    private readonly clock: () => number,
    private readonly settings: () => ImplicitCacheSettings,
  ) {}

  private minFor(model: string): number {
    const { minTokens } = this.settings();
    return (Object.hasOwn(minTokens, model) ? minTokens[model] : minTokens['*']) ?? Number.POSITIVE_INFINITY;
  }

  /**
   * The tokens of `request` a warm prefix covers (0 when none reaches the model's minimum), at most
   * `promptTokens`; nothing is recorded (see {@link record}).
   */
  lookup(model: string, request: Record<string, unknown>, promptTokens: number, rule: TokenRule): number {
    const { enabled, ttlMs } = this.settings();
    if (!enabled) return 0;
    const text = leadingRequestText(request);
    const now = this.clock();
    let best = 0;
    for (const entry of this.warm.get(model) ?? []) {
      if (entry.atMs <= now - ttlMs) continue;
      best = Math.max(best, commonPrefixLength(text, entry.text));
    }
    if (best === 0) return 0;
    const shared = textTokens(text.slice(0, best), rule);
    return shared >= this.minFor(model) ? Math.min(shared, promptTokens) : 0;
  }

  /** Makes `request`'s prefix the model's latest warm one (an admitted request). */
  record(model: string, request: Record<string, unknown>): void {
    const { enabled, entries } = this.settings();
    if (!enabled) return;
    const text = leadingRequestText(request);
    const list = (this.warm.get(model) ?? []).filter((e) => e.text !== text);
    list.unshift({ text, atMs: this.clock() });
    this.warm.set(model, list.slice(0, entries));
  }

  reset(): void {
    this.warm.clear();
  }
}
