import { createHash } from 'node:crypto';
import type { GenerateContentRequest, ItemOutcome, ItemRecord, JobRecord } from '../core/jobs.js';
import type { Quotas } from '../core/quotas.js';
import { canonicalJson } from '../core/rerun.js';
import { plannedTokens } from '../core/tokens.js';
import { fitsInline } from '../lifecycle/lifecycle.js';
import type { Logger } from '../platform/logger.js';
import { answerObjectName, isMissingObject, type ObjectStore } from '../platform/object-store.js';
import type { LedgerStore } from '../platform/store/ledger.js';
import type { ResponseCacheStore } from '../platform/store/response-cache.js';

/**
 * The response cache: an item whose request the same owner sent before (same model, contents,
 * config, system instruction, tools: everything but the service tier) is answered with the answer
 * that call bought, for RESPONSE_CACHE_TTL_HOURS, unless its job said `cache: false`. A hit costs
 * nothing and counts no tokens (the response is passed through as Gemini sent it, its
 * `usageMetadata` included); the item is recorded, counted and streamed like any other, and its
 * dispatch slot goes back to the ledger (it used no quota). One document read per item at most, and
 * a bucket read for an answer too big for a document. The cache is best effort on both sides: a
 * failed read is a miss, a failed write loses an entry, neither changes what happens to the item.
 * Items with a schema (checked, maybe repaired) are neither looked up nor remembered.
 */

export interface ResponseCacheDeps {
  store: ResponseCacheStore;
  objects: Pick<ObjectStore, 'getJson'>;
  ledger: Pick<LedgerStore, 'reserve'>;
  quotas: Quotas;
  /** How long an answer is served (RESPONSE_CACHE_TTL_HOURS); 0: no cache. */
  ttlMs: number;
  now?: () => number;
}

/** A succeeded outcome as the worker records it. */
export type Answer = Extract<ItemOutcome, { state: 'succeeded' }>;

export type ResponseCache = ReturnType<typeof createResponseCache>;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The cache document of a request by an owner: `{owner hash}_{request hash}`, the request hash over
 * the model and the request as sent without `generationConfig.serviceTier` (a Flex or Priority
 * answer is the same answer). A job without an owner (a bucket job of a deployment without bucket
 * owners) shares the owner-less entries.
 */
export function cacheEntryId(
  owner: string | undefined,
  model: string,
  request: GenerateContentRequest,
): string {
  const { serviceTier: _tier, ...config } = request.generationConfig ?? {};
  const keyed = { ...request, generationConfig: Object.keys(config).length > 0 ? config : undefined };
  const requestHash = sha256(canonicalJson({ model: model.replace(/^models\//, ''), request: keyed }));
  return `${sha256(`owner:${owner ?? ''}`).slice(0, 32)}_${requestHash}`;
}

export function createResponseCache(deps: ResponseCacheDeps) {
  const clock = deps.now ?? Date.now;
  const uses = (job: JobRecord) => deps.ttlMs > 0 && job.cache !== false;

  return {
    /**
     * The outcome to record for the item from the cache, or undefined (a miss, an expired entry, a
     * job that opted out, an answer whose bucket object is gone, a failed read).
     */
    async lookup(job: JobRecord, request: GenerateContentRequest, log: Logger): Promise<Answer | undefined> {
      if (!uses(job)) return undefined;
      try {
        const entry = await deps.store.get(cacheEntryId(job.owner, job.model, request), clock());
        if (!entry) return undefined;
        const response = entry.responseObject
          ? await deps.objects.getJson(entry.responseObject)
          : JSON.parse(entry.responseJson!);
        return {
          state: 'succeeded',
          response,
          usage: { promptTokens: 0, outputTokens: 0 },
          costUsd: 0,
          cached: { jobId: entry.jobId, savedUsd: entry.costUsd },
        };
      } catch (err) {
        if (!isMissingObject(err))
          log.warn(
            { event: 'cache.read_failed', err: (err as Error).message },
            'response cache read failed; calling Gemini',
          );
        return undefined;
      }
    },

    /**
     * Stores the answer the item's call bought (after its outcome is written: a big response is then
     * in the item's answer object, which the entry points at). Best effort.
     */
    async remember(
      job: JobRecord,
      item: Pick<ItemRecord, 'id'>,
      request: GenerateContentRequest,
      answer: Answer,
      log: Logger,
    ): Promise<void> {
      if (!uses(job) || answer.cached) return;
      const responseJson = JSON.stringify(answer.response);
      const stored = fitsInline(responseJson)
        ? { responseJson }
        : { responseObject: answerObjectName(job.id, item.id) };
      await deps.store
        .put(cacheEntryId(job.owner, job.model, request), {
          ...stored,
          usage: answer.usage,
          costUsd: answer.costUsd,
          jobId: job.id,
          itemId: item.id,
          expireAtMs: clock() + deps.ttlMs,
        })
        .catch((err: Error) =>
          log.warn(
            { event: 'cache.write_failed', err: err.message },
            'could not store the answer in the response cache',
          ),
        );
    },

    /**
     * Gives the item's dispatch slot back to the model's ledger: a cached answer used no quota.
     * Only a slot still within the ledger's window matters; best effort.
     */
    async releaseSlot(
      job: JobRecord,
      item: Pick<ItemRecord, 'estimatedTokens'>,
      plannedMs: number | undefined,
      log: Logger,
    ): Promise<void> {
      const quota = deps.quotas.models[job.model];
      if (plannedMs === undefined || !quota || plannedMs < clock() - 60_000) return;
      const release = { atMs: plannedMs, tokens: plannedTokens(item.estimatedTokens, job.tokenRatio) };
      await deps.ledger
        .reserve(job.model, [], quota, deps.quotas.headroom, { jobId: job.id, release })
        .catch((err: Error) =>
          log.warn(
            { event: 'cache.release_failed', err: err.message },
            'could not give a cached item its slot back',
          ),
        );
    },
  };
}
