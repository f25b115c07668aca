/**
 * The Batch API path's item outcomes, part of the lifecycle (the one owner of item state): the
 * answers of a responses file written once each, a part's unanswered items sent back (to the
 * queues, due by the stall window, or failed, by the job's choice), and a part's totals counted
 * into its own counter document. The Batch API cycle (`functions/tick/batch-api/`) calls only these: it holds
 * no item store and no counter.
 */
import type { BatchFallback } from '../core/batch.js';
import { batchFallbackError, batchLineError, isTransientLineError } from '../core/batch-errors.js';
import { costUsd, type UsageMetadata, usageFrom } from '../core/cost.js';
import type { ModelQuota } from '../core/quotas.js';
import { batchPartCounters } from '../core/totals.js';
import type { Logger } from '../platform/logger.js';
import type { BatchItemsStore } from '../platform/store/batch-items.js';
import type { CountersStore, CounterValues } from '../platform/store/counters.js';
import type { StoredOutcome } from '../platform/store/items.js';
import type { TaskQueue } from '../platform/task-queue.js';
import { partCounterId } from './create.js';

export interface BatchOutcomesDeps {
  items: BatchItemsStore;
  counters: Pick<CountersStore, 'put'>;
  tasks: Pick<TaskQueue, 'enqueueControl'>;
  /** The lifecycle's: whether a serialised response is stored on its item's document. */
  fitsInline: (responseJson: string) => boolean;
  /** The lifecycle's: stores a response too big for its item's document; the object's name. */
  offloadAnswer: (item: { jobId: string; itemId: string }, response: unknown) => Promise<string>;
  /**
   * How long a rerouted item may wait for a delivery before the reconciler gives it a new task
   * (the lifecycle's `stallMs`): its enqueue task is one chain that nothing else tracks.
   */
  stallMs: number;
  /**
   * A pipeline's units were written (a batch pipeline's unit job, ./pipeline-batch.ts): their
   * items move on, as a worker's unit does (worker/run-item.ts). Never throws.
   */
  unitsSettled?: (jobId: string, itemIds: string[], log: Logger) => Promise<void>;
  now?: () => number;
}

/** A batch of a job: items [fromIndex, toIndex) whose `batchPart` is `part`, `items` of them. */
export interface PartRef {
  jobId: string;
  part: number;
  fromIndex: number;
  toIndex: number;
  items: number;
}

/** How a part's answers are priced: the model's price at the batch discount. */
export interface BatchPricing {
  price: ModelQuota['price'];
  discount: number;
}

/** Output lines joined and written per round: one read of their items, one bulk of writes. */
const ROUND = 500;

export type BatchOutcomes = ReturnType<typeof createBatchOutcomes>;

export function createBatchOutcomes(deps: BatchOutcomesDeps) {
  const clock = deps.now ?? Date.now;

  const outcomeOf = async (
    ref: { jobId: string; itemId: string },
    line: Record<string, unknown>,
    pricing: BatchPricing,
  ): Promise<StoredOutcome> => {
    if (!('response' in line)) return { state: 'failed', error: batchLineError(line.error) };
    const response = line.response as { usageMetadata?: UsageMetadata };
    const usage = usageFrom(response?.usageMetadata);
    const cost = costUsd(usage, pricing.price, pricing.discount);
    const priced = {
      usage,
      costUsd: cost,
      tier: 'batch' as const,
      standardCostUsd: costUsd(usage, pricing.price),
    };
    const json = JSON.stringify(response);
    if (deps.fitsInline(json)) return { state: 'succeeded', responseJson: json, ...priced };
    const name = await deps.offloadAnswer(ref, response);
    return { state: 'succeeded', responseObject: name, ...priced };
  };

  /** Counts the part's items with an outcome (aggregation), and writes them as its counter document. */
  const recordCounts = async (part: PartRef): Promise<CounterValues> => {
    const counts = batchPartCounters(await deps.items.countPart(part.jobId, part.part));
    await deps.counters.put(part.jobId, partCounterId(part.part), counts);
    return counts;
  };

  return {
    /**
     * Writes the outcome of each line of a responses file (order not guaranteed: joined by key, the
     * item id) once: only on an item still pending and still in the part, so a line seen twice, a
     * tick redoing the work, or a cancel meanwhile changes nothing twice. Answers are priced at the
     * batch rate. Bad lines are skipped. Two rounds of writes at most in flight. With
     * `retryTransient`, a line that failed with a transient error (429, 500, 503:
     * `isTransientLineError`) is left pending, counted in `transient`, for the caller to send back.
     */
    async settleLines(
      part: PartRef,
      lines: AsyncIterable<string>,
      pricing: BatchPricing,
      log: Logger,
      options: { retryTransient?: boolean } = {},
    ): Promise<{ lines: number; written: number; transient: number }> {
      let round: Array<{ key: string; line: Record<string, unknown> }> = [];
      const inflight: Array<Promise<unknown>> = [];
      let written = 0;
      let read = 0;
      let transient = 0;
      const flush = async () => {
        const keys = round.map((r) => r.key);
        const heads = await deps.items.heads(part.jobId, keys);
        const writes: Array<{ itemId: string; version: string; outcome: StoredOutcome }> = [];
        for (const { key, line } of round) {
          const head = heads.get(key);
          if (head?.state !== 'pending' || head.batchPart !== part.part) continue;
          if (
            options.retryTransient &&
            !('response' in line) &&
            isTransientLineError(batchLineError(line.error))
          ) {
            transient++;
            continue;
          }
          const outcome = await outcomeOf({ jobId: part.jobId, itemId: key }, line, pricing);
          writes.push({ itemId: key, version: head.version, outcome });
        }
        round = [];
        // The next round is parsed and read while this one's writes land.
        const settling = deps.items.settleMany(part.jobId, writes).then(async (n) => {
          written += n;
          // Each item is advanced only if its unit ended (a write that lost changes nothing).
          if (n > 0)
            await deps.unitsSettled?.(
              part.jobId,
              writes.map((w) => w.itemId),
              log,
            );
        });
        // Marked handled now; its failure is thrown where it is awaited (never an unhandled rejection).
        settling.catch(() => undefined);
        inflight.push(settling);
        if (inflight.length >= 2) await inflight.shift();
      };
      for await (const text of lines) {
        read++;
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          log.warn({ event: 'batch.bad_output_line' }, 'a line of the responses file is not JSON; skipped');
          continue;
        }
        if (typeof line.key !== 'string') continue;
        round.push({ key: line.key, line });
        if (round.length >= ROUND) await flush();
      }
      if (round.length > 0) await flush();
      await Promise.all(inflight);
      return { lines: read, written, transient };
    },

    /**
     * How many of the part's items have no outcome yet. With none left, the part's totals are
     * recorded (its counter document): the part is settled, durably.
     */
    async unanswered(part: PartRef): Promise<number> {
      const counts = await deps.items.countPart(part.jobId, part.part);
      const settled = (counts.succeeded ?? 0) + (counts.failed ?? 0) + (counts.cancelled ?? 0);
      if (settled < part.items) return part.items - settled;
      await deps.counters.put(part.jobId, partCounterId(part.part), batchPartCounters(counts));
      return 0;
    },

    /**
     * The part's items still pending go back: to the queues (`realtime`, the default: taken out of
     * the part and, in the same write, due by the stall window past `planMs`, then handed to one
     * enqueue task, which sets their due times anew as it plans them) or failed with `reason`.
     * Then the part's totals are recorded. Idempotent: a call that stops halfway is redone whole
     * (the sweep finds what is left; the enqueue task is named). How many of its items went back to
     * the queues, this call or an earlier one.
     */
    async sendBack(
      part: PartRef,
      to: BatchFallback,
      reason: string,
      /** How long the enqueue task may take to plan them all (`reroutePlanMs`). */
      planMs = 0,
    ): Promise<{ rerouted: number }> {
      if (to === 'fail') {
        await deps.items.sweepPart(part.jobId, part.part, {
          kind: 'fail',
          outcome: { state: 'failed', error: batchFallbackError(reason) },
        });
      } else {
        await deps.items.sweepPart(part.jobId, part.part, {
          kind: 'reroute',
          dueByMs: clock() + deps.stallMs + planMs,
        });
        await deps.tasks.enqueueControl(
          { kind: 'enqueue', jobId: part.jobId, from: part.fromIndex, to: part.toIndex },
          `${part.jobId}-enqueue-fallback-p${part.part}`,
        );
      }
      const counts = await recordCounts(part);
      const settled = (counts.succeeded ?? 0) + (counts.failed ?? 0) + (counts.cancelled ?? 0);
      return { rerouted: Math.max(0, part.items - settled) };
    },
  };
}
