import { dueWindowMs } from '../core/due.js';
import { type ItemRecord, itemIdForIndex, type JobRecord } from '../core/jobs.js';
import { taskCutOf } from '../core/queue-rate.js';
import type { ModelQuota, Quotas } from '../core/quotas.js';
import { lateSendNeedsSlot, PLAN_AHEAD_MS } from '../core/rate.js';
import { pageSizeFor } from '../core/task-groups.js';
import { withTokenCut } from '../core/token-cut.js';
import { plannedTokens } from '../core/tokens.js';
import type { GeminiClient } from '../platform/gemini/client.js';
import type { Logger } from '../platform/logger.js';
import type { Stores } from '../platform/store/index.js';
import type { ItemTask, TaskQueue } from '../platform/task-queue.js';
import { lowerRequestRate } from './adaptive-rate.js';
import { createCalibrator } from './plan-calibrate.js';
import { createSpendPlanner } from './plan-spend.js';
import { createUnitPlanner } from './unit-plan.js';

/**
 * Planning, the part of the lifecycle that decides when items reach Gemini: pages of a job's items
 * get slots on the model's dispatch ledger (requests and tokens, `core/rate.ts`) and tasks scheduled
 * at them; a late delivery takes a new slot; a spent daily quota pauses the model.
 */
export interface PlannerDeps {
  stores: Pick<Stores, 'jobs' | 'items' | 'ledger' | 'pauses' | 'counters'>;
  tasks: Pick<TaskQueue, 'enqueueItems' | 'pauseModel'>;
  /** Gemini's token count, to calibrate estimates before planning; without it estimates are trusted. */
  counter?: Pick<GeminiClient, 'countTokens'>;
  quotas: Quotas;
  logger: Logger;
  /** How long enqueuing may make no progress before the reconciler starts it again. */
  stallMs: number;
  /** Cloud Tasks' dispatch deadline of an item task (600 s, the task queue's default, if absent). */
  dispatchDeadlineSeconds?: number;
  now?: () => number;
}

/** Items planned (and tasks created) per page. */
export const ENQUEUE_PAGE = 500;

export type Planner = ReturnType<typeof createPlanner>;

export function createPlanner(deps: PlannerDeps) {
  const { jobs, items, ledger, pauses } = deps.stores;
  const clock = deps.now ?? Date.now;
  const window = dueWindowMs(deps.quotas.queue, deps.dispatchDeadlineSeconds ?? 600);
  /** When an item whose task is planned at `plannedMs` is due (`ItemRecord.dueByMs`). */
  const dueBy = (plannedMs: number) => plannedMs + window;
  const spend = createSpendPlanner({ ...deps, now: clock });
  const calibrate = createCalibrator(deps);

  /**
   * A slot on the model's ledger for an item in a task of its own (a whole task's worth of the
   * queue's rate), `release` taking back its earlier one; undefined when the job no longer reserves.
   */
  async function reserveAlone(
    job: JobRecord,
    item: ItemRecord,
    quota: ModelQuota,
    tokens: number,
    release?: { atMs: number; tokens: number },
    signal?: AbortSignal,
  ): Promise<number | undefined> {
    const paced = await spend.planFor(job, [item], [tokens]);
    const [slotMs] = await ledger.reserve(job.model, [tokens], quota, deps.quotas.headroom, {
      jobId: job.id,
      ramp: deps.quotas.queueRamp,
      ...(paced ? { spend: paced.plan } : {}),
      itemsPerTask: deps.quotas.itemsPerTask,
      alone: true,
      ...(release ? { release } : {}),
      ...(signal ? { signal } : {}),
    });
    return slotMs;
  }

  /** An item's task of its own at a fresh slot ({@link reserveAlone}); the slot, or undefined. */
  async function planAlone(
    job: JobRecord,
    item: ItemRecord,
    name: Pick<ItemTask, 'round' | 'retryOf'>,
    signal?: AbortSignal,
  ): Promise<number | undefined> {
    const quota = deps.quotas.models[job.model];
    if (!quota) return undefined;
    const tokens = plannedTokens(item.estimatedTokens, job.tokenRatio);
    const slotMs = await reserveAlone(job, item, quota, tokens, undefined, signal);
    if (slotMs === undefined) return undefined;
    await deps.tasks.enqueueItems(job.model, job.id, [
      { itemId: item.id, index: item.index, plannedMs: slotMs, ...name },
    ]);
    return slotMs;
  }

  return {
    dueBy,
    /** A pipeline's units, planned as an item reaches their step (./unit-plan.ts). */
    ...createUnitPlanner(deps, dueBy, spend),

    /**
     * Plans the next page of the job's items from `through` and creates their tasks, at most
     * {@link PLAN_AHEAD_MS} ahead. Returns where enqueuing stands, and when it must go on if the
     * plan reached its horizon (`resumeAtMs`).
     */
    async enqueuePage(
      job: JobRecord,
      through: number,
      to?: number,
    ): Promise<{ through: number; done: boolean; resumeAtMs?: number }> {
      const quota = deps.quotas.models[job.model]!;
      const end = to ?? job.total;
      // A range (a batch's items sent back to the queues) is not the job's own enqueuing: it leaves
      // `enqueuedThrough` alone.
      const track = to === undefined;
      // A heartbeat: a page can take a while under load, and the reconciler must not think it stalled.
      if (track) await jobs.setEnqueued(job.id, through, clock() + deps.stallMs);
      const limit = Math.min(pageSizeFor(ENQUEUE_PAGE, deps.quotas.itemsPerTask), end - through);
      const page = await items.list(job.id, {
        ...(through > 0 ? { afterId: itemIdForIndex(through - 1) } : {}),
        limit,
      });
      // The list may end before `end` (a bucket pipeline's step 0 has no unit for a bad line): done.
      const listEnded = page.length < limit && through < end;
      if (listEnded && track && page.length === 0)
        await jobs.setEnqueued(job.id, end, clock() + deps.stallMs);
      if (page.length === 0 || end <= through) return { through, done: true };
      // Items that go through the job's batches get no task; items already planned keep their slot.
      const pending = await spend.pageToPlan(
        job,
        page.filter((i) => i.state === 'pending' && !(job.mode === 'batch' && i.batchPart !== undefined)),
        track,
        (i) => i.dueByMs! - window,
      );
      const { ratio, jobEvidence } = await calibrate(job, pending);
      // An adaptive model plans a short way ahead: a 429's decrease reaches only what is planned after it.
      const aheadMs = quota.adaptive?.planAheadMs ?? PLAN_AHEAD_MS;
      const tokens = pending.map((i) => plannedTokens(i.estimatedTokens, ratio));
      const paced = await spend.planFor(job, pending, tokens);
      const schedule = await ledger.reserve(job.model, tokens, quota, deps.quotas.headroom, {
        jobId: job.id,
        untilMs: clock() + aheadMs,
        ...(jobEvidence ? { evidence: jobEvidence } : {}),
        ramp: deps.quotas.queueRamp,
        ...(paced ? { spend: paced.plan } : {}),
        itemsPerTask: deps.quotas.itemsPerTask,
      });
      await spend.noteHeld(job, paced?.heldUntilMs());
      // Due times first: a crash before the tasks exist leaves items the reconciler will find.
      await items.setDue(
        job.id,
        schedule.map((plannedMs, n) => ({
          itemId: pending[n]!.id,
          version: pending[n]!.version,
          dueByMs: dueBy(plannedMs),
        })),
      );
      await deps.tasks.enqueueItems(
        job.model,
        job.id,
        schedule.map((plannedMs, n) => ({ itemId: pending[n]!.id, index: pending[n]!.index, plannedMs })),
        taskCutOf(deps.quotas, job.model),
      );
      // The first item in index order not planned (the page may be ordered otherwise).
      const unplanned = pending.slice(schedule.length).sort((a, b) => a.index - b.index)[0];
      const next = unplanned ? unplanned.index : listEnded ? end : page[page.length - 1]!.index + 1;
      if (!unplanned) {
        if (track) await jobs.setEnqueued(job.id, next, clock() + deps.stallMs);
        return { through: next, done: next >= end };
      }
      // The plan reaches its horizon: plan the rest when half of that is left.
      const resumeAtMs = Math.max(clock() + 1000, (schedule.at(-1) ?? clock() + aheadMs) - aheadMs / 2);
      if (track) await jobs.setEnqueued(job.id, next, resumeAtMs + deps.stallMs);
      return { through: next, done: false, resumeAtMs };
    },

    /**
     * A delivery far behind its plan: where the ledger is light it goes ahead (undefined: send now);
     * otherwise it takes a new slot and, if that slot is later than now, gets a new task there
     * (the slot is returned, and the caller ends this delivery). `signal`: aborted when the caller
     * stops waiting, so a reservation not yet begun is not made (`ReserveOptions.signal`).
     */
    async replanLate(
      job: JobRecord,
      item: ItemRecord,
      plannedMs: number,
      neverSent: boolean,
      packed = false,
      signal?: AbortSignal,
    ): Promise<number | undefined> {
      const quota = deps.quotas.models[job.model]!;
      const current = await ledger.read(job.model);
      const tokens = plannedTokens(item.estimatedTokens, job.tokenRatio);
      const effective = withTokenCut(quota, current.tokenCut, clock());
      // An adaptive model's requests all go by its plan: a late one unplanned would add to a busy pool.
      const light =
        !quota.adaptive &&
        !lateSendNeedsSlot(current, clock(), tokens, effective, deps.quotas.headroom, packed);
      if (light) return undefined;
      // A delivery that never reached Gemini leaves its old slot free again.
      const release = neverSent ? { atMs: plannedMs, tokens } : undefined;
      const slotMs = await reserveAlone(job, item, quota, tokens, release, signal);
      if (slotMs === undefined || slotMs <= clock()) return undefined;
      await deps.tasks.enqueueItems(job.model, job.id, [
        { itemId: item.id, index: item.index, plannedMs: slotMs, replan: true },
      ]);
      return slotMs;
    },

    /**
     * Gives an item a new task at a fresh slot (the reconciler: its lease ran out, or no task
     * delivered it by its due time); the slot, or undefined when there is none (the job is over, or
     * its model unknown). The task is named by `round`, so a repeat creates it once.
     */
    retask: (job: JobRecord, item: ItemRecord, round: number) => planAlone(job, item, { round }),

    /**
     * Plans the retry of an item a transient fault stopped in a task of several items: a task of its
     * own at a fresh slot, which takes a whole task's worth of the queue's rate, where the queue's
     * own retry of the shared task would take the same unplanned, ahead of every planned task (and
     * redeliver the others). Named by the item's attempts, so a repeat creates it once.
     */
    planRetry: (job: JobRecord, item: ItemRecord, signal?: AbortSignal) =>
      planAlone(job, item, { retryOf: item.attempts }, signal),

    /**
     * Plans an item's repair call (its answer missed its schema) as a call of its own: a slot on the
     * ledger for `tokens` (the request, the answer and the repair turn) and a task there, created
     * once (`repair`). The slot (now, when the job no longer reserves: its claim will say why).
     */
    async planRepair(job: JobRecord, item: ItemRecord, tokens: number): Promise<number> {
      const quota = deps.quotas.models[job.model]!;
      const [slotMs] = await ledger.reserve(job.model, [tokens], quota, deps.quotas.headroom, {
        jobId: job.id,
        itemsPerTask: deps.quotas.itemsPerTask,
        alone: true,
      });
      const plannedMs = slotMs ?? clock();
      await deps.tasks.enqueueItems(job.model, job.id, [
        { itemId: item.id, index: item.index, plannedMs, repair: true },
      ]);
      return plannedMs;
    },

    /**
     * Gemini refused the model's input tokens for the minute (a TPM 429): every job of the model
     * plans under a lowered token rate for a while (`core/token-cut.ts`). Best effort: a failure is
     * logged, and the item waits its retryDelay all the same.
     */
    async lowerTokenRate(model: string, log: Logger): Promise<void> {
      try {
        const cut = await ledger.lowerTokenRate(model);
        log.warn(
          { event: 'quota.tpm_lowered', model, factor: cut.factor, untilMs: cut.untilMs },
          `Gemini refused ${model}'s tokens for the minute; planning at ${Math.round(cut.factor * 100)}% of its TPM for a while`,
        );
      } catch (err) {
        log.error(
          { event: 'quota.tpm_lower_failed', model, err: (err as Error).message },
          'could not lower the token rate',
        );
      }
    },

    /** A 429 of a model whose rate adapts: its AIMD decrease (lifecycle/adaptive-rate.ts). */
    lowerRequestRate: (model: string, log: Logger) => lowerRequestRate(ledger, deps.quotas, model, log),

    /**
     * The model's daily quota is spent: pause its queue until `untilMs`, and say so on the job. The
     * pause record comes first: the tick resumes only queues it has a record of, so a queue paused
     * without one would stay paused forever; a failed record write pauses nothing (and throws).
     */
    async pauseForDailyQuota(job: JobRecord, untilMs: number, reason: string, log: Logger): Promise<void> {
      const notice = `Paused: the daily request quota of ${job.model} is spent; resumes after ${new Date(untilMs).toISOString()}.`;
      await pauses.set(job.model, untilMs, reason);
      await Promise.all([
        jobs.setNotice(job.id, notice),
        deps.tasks
          .pauseModel(job.model)
          .catch((e: Error) =>
            log.error({ event: 'queue.pause_failed', err: e.message }, 'could not pause the queue'),
          ),
      ]);
      log.warn({ event: 'quota.daily_exhausted', model: job.model, untilMs }, notice);
    },
  };
}
