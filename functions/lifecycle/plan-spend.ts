import { costUsd, type PriceTier, tierShare } from '../core/cost.js';
import type { ItemRecord, JobRecord } from '../core/jobs.js';
import { orderByPrefix, prefixKey } from '../core/prefix-order.js';
import { taskCutOf } from '../core/queue-rate.js';
import type { Quotas } from '../core/quotas.js';
import { SPEND_NOTICE_START, type SpendLimit, spendNotice } from '../core/spend-pace.js';
import type { Logger } from '../platform/logger.js';
import type { Stores } from '../platform/store/index.js';
import type { SpendPlan } from '../platform/store/spend-ledger.js';
import type { TaskQueue } from '../platform/task-queue.js';

/**
 * The planner's cost side: what each item is expected to cost on the project's spend ledger
 * (`core/spend-pace.ts`), the job's notice while the spend limit holds items back, and the order of
 * a page for Gemini's implicit cache (`core/prefix-order.ts`).
 */

/**
 * The job's answers speak for its output once this many have come back; their average output is
 * then planned with this margin (a window holds many items: the sum, not the costliest, binds).
 */
export const SPEND_OUTPUT_MIN_ANSWERS = 30;
export const SPEND_OUTPUT_MARGIN = 1.1;
/** How long a read of a job's answers (for its expected output) is reused. */
export const EXPECTED_OUTPUT_READ_MS = 5_000;

/** The deployment's spend limit, or undefined when it sets none (no pacing). */
export function spendLimitOf(quotas: Quotas): SpendLimit | undefined {
  if (quotas.spendPer10MinUsd === undefined) return undefined;
  return {
    limitUsd: quotas.spendPer10MinUsd,
    windowSeconds: quotas.spendPacing.windowSeconds,
    headroom: quotas.headroom,
  };
}

/** The tier a job's items are planned at: Flex jobs at Flex's price, the rest at standard. */
function plannedTier(job: JobRecord): PriceTier {
  return job.mode === 'flex' ? 'flex' : 'standard';
}

export interface SpendPlanDeps {
  quotas: Quotas;
  stores: Pick<Stores, 'counters' | 'jobs'>;
  tasks: Pick<TaskQueue, 'enqueueItems'>;
  logger: Logger;
  now: () => number;
}

export function createSpendPlanner(deps: SpendPlanDeps) {
  const { quotas } = deps;
  const limit = spendLimitOf(quotas);

  /**
   * The output tokens an item without `maxOutputTokens` is planned with: what the job's answers
   * produced on average (with a margin) once there are enough of them, else the deployment's
   * `spendPacing.expectedOutputTokens`. So the plan is corrected by what answers really cost.
   */
  const recent = new Map<string, { atMs: number; tokens: number }>();
  const expectedOutput = async (job: JobRecord): Promise<number> => {
    // Late deliveries plan one item each: they reuse a read of the job's answers for a few seconds.
    const kept = recent.get(job.id);
    if (kept && deps.now() - kept.atMs < EXPECTED_OUTPUT_READ_MS) return kept.tokens;
    const tokens = await readExpectedOutput(job);
    if (recent.size > 1000) recent.clear();
    recent.set(job.id, { atMs: deps.now(), tokens });
    return tokens;
  };
  const readExpectedOutput = async (job: JobRecord): Promise<number> => {
    const fallback = quotas.spendPacing.expectedOutputTokens;
    try {
      const t = await deps.stores.counters.totals(job.id, job.total, job.counterShards, job.extraCounters);
      if (t.counts.succeeded < SPEND_OUTPUT_MIN_ANSWERS) return fallback;
      return Math.ceil((t.usage.outputTokens / t.counts.succeeded) * SPEND_OUTPUT_MARGIN);
    } catch (err) {
      deps.logger.warn(
        { event: 'plan.spend_evidence_failed', jobId: job.id, err: (err as Error).message },
        "could not read the job's answers; planning its output at the default",
      );
      return fallback;
    }
  };

  return {
    /**
     * The spend side of planning `items` (their planned input tokens in `tokens`), or undefined when
     * the deployment has no spend limit. Each item costs its input and its output (its
     * `maxOutputTokens`, capped by what the job's answers produce) at its model's and tier's price.
     */
    async planFor(job: JobRecord, items: readonly Pick<ItemRecord, 'request'>[], tokens: readonly number[]) {
      const price = quotas.models[job.model]?.price;
      if (!limit || !price || items.length === 0) return undefined;
      const share = tierShare(quotas, job.model, plannedTier(job));
      const observed = await expectedOutput(job);
      const costsUsd = items.map((item, n) => {
        const cap = item.request.generationConfig?.maxOutputTokens;
        const output = typeof cap === 'number' && cap > 0 ? Math.min(cap, observed) : observed;
        return costUsd({ promptTokens: tokens[n] ?? 0, outputTokens: output }, price, share);
      });
      let heldUntilSec: number | undefined;
      const plan: SpendPlan = { limit, costsUsd, report: (held) => (heldUntilSec = held) };
      return { plan, heldUntilMs: () => (heldUntilSec === undefined ? undefined : heldUntilSec * 1000) };
    },

    /**
     * Says on the job that the spend limit holds its items back (planned through `untilMs`), so a
     * user sees why it goes slower than its model's RPM. Best effort: the plan stands without it.
     */
    async noteHeld(job: JobRecord, untilMs: number | undefined): Promise<void> {
      if (!limit) return;
      if (untilMs === undefined || untilMs <= deps.now()) {
        // The limit no longer holds this job back: its pacing notice goes.
        if (job.notice?.startsWith(SPEND_NOTICE_START)) {
          await deps.stores.jobs.setNotice(job.id, null).catch(() => undefined);
          job.notice = null;
        }
        return;
      }
      const notice = spendNotice(limit, untilMs);
      job.notice = notice;
      await deps.stores.jobs.setNotice(job.id, notice).catch((err: Error) => {
        deps.logger.warn({ event: 'plan.notice_failed', jobId: job.id, err: err.message }, 'notice not set');
      });
      deps.logger.info({ event: 'plan.spend_paced', jobId: job.id, untilMs }, notice);
    },

    /**
     * The items of a page to plan, in the order they are planned: same-prefix items back to back
     * (core/prefix-order.ts). In the job's own enqueuing (`track`), items already planned — by an
     * earlier page planned out of index order, or before a crash between the plan and the tasks —
     * keep their slot: their tasks are made again at it (`plannedMsOf`; a repeat is deduplicated by
     * its name) and they are not planned twice.
     */
    async pageToPlan(
      job: JobRecord,
      items: ItemRecord[],
      track: boolean,
      plannedMsOf: (item: ItemRecord) => number,
    ): Promise<ItemRecord[]> {
      const planned = track ? items.filter((i) => typeof i.dueByMs === 'number') : [];
      if (planned.length > 0)
        await deps.tasks.enqueueItems(
          job.model,
          job.id,
          // In plan order and cut as first planned (several items a task), so each is the same task.
          planned
            .map((i) => ({ itemId: i.id, index: i.index, plannedMs: plannedMsOf(i) }))
            .sort((a, b) => a.plannedMs - b.plannedMs || a.index - b.index),
          taskCutOf(quotas, job.model),
        );
      const rest = planned.length > 0 ? items.filter((i) => !planned.includes(i)) : items;
      const min = quotas.models[job.model]?.implicitCacheMinTokens;
      if (!quotas.implicitCacheOrder || min === undefined) return rest;
      return orderByPrefix(rest, (i) => (i.media?.length ? undefined : prefixKey(i.request, min)));
    },
  };
}
