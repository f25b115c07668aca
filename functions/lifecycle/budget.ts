import { BUDGET_READ_MS, budgetAllows, budgetNotice } from '../core/budget.js';
import type { JobRecord } from '../core/jobs.js';
import type { Stores } from '../platform/store/index.js';

/**
 * A job's budget as one instance keeps it (part of the lifecycle; the rule is core/budget.ts): the
 * spent cost read from the job's counters at most once per `readEveryMs` per job, what this
 * instance's own items cost since, and the estimates of its items in flight. The first instance that
 * finds the budget reached marks the job (`budgetStopped`, its notice), so every other delivery
 * stops without reading anything.
 */
export interface BudgetDeps {
  stores: Pick<Stores, 'jobs' | 'counters'>;
  now: () => number;
  readEveryMs?: number;
}

/** An item let through: give it back to {@link BudgetGate.done} with what it cost. */
export interface BudgetTicket {
  jobId: string;
  estimateUsd: number;
}

/** Jobs an instance keeps a budget view of before it forgets those idle for a minute. */
const MAX_JOBS_SEEN = 1_000;

interface Seen {
  /** When the counters were last read (epoch ms); what they said, plus this instance's answers since. */
  readAtMs: number;
  spentUsd: number;
  /** Succeeded items in the read and answered here since: the job's average answer cost. */
  answered: number;
  /** Estimates of this instance's items sent and not yet finished (kept across reads). */
  inFlightUsd: number;
  /** A read under way: deliveries at once share it (and this entry), so none loses another's reservation. */
  reading?: Promise<void>;
}

export type BudgetGate = ReturnType<typeof createBudgetGate>;

export function createBudgetGate(deps: BudgetDeps) {
  const readEveryMs = deps.readEveryMs ?? BUDGET_READ_MS;
  const seen = new Map<string, Seen>();

  const read = async (job: JobRecord, entry: Seen): Promise<void> => {
    const totals = await deps.stores.counters.totals(job.id, job.total, job.counterShards, job.extraCounters);
    Object.assign(entry, {
      readAtMs: deps.now(),
      spentUsd: totals.costUsd,
      answered: totals.counts.succeeded,
    });
  };

  /** The job's entry, its spent cost read again when older than `readEveryMs`. */
  const spentOf = async (job: JobRecord): Promise<Seen> => {
    const now = deps.now();
    let entry = seen.get(job.id);
    if (!entry) {
      entry = { readAtMs: Number.NEGATIVE_INFINITY, spentUsd: 0, answered: 0, inFlightUsd: 0 };
      seen.set(job.id, entry);
      // Bounded: jobs not seen for a minute are forgotten (the next item of one reads again).
      if (seen.size > MAX_JOBS_SEEN)
        for (const [id, s] of seen) if (now - s.readAtMs > 60_000) seen.delete(id);
    }
    if (now - entry.readAtMs >= readEveryMs) {
      const current = entry;
      current.reading ??= read(job, current).finally(() => {
        delete current.reading;
      });
    }
    if (entry.reading) await entry.reading;
    return entry;
  };

  return {
    /** What the job's answers cost on average as last read (0 before any): a floor for estimates. */
    averageUsd(jobId: string): number {
      const s = seen.get(jobId);
      return s && s.answered > 0 ? s.spentUsd / s.answered : 0;
    },

    /**
     * Lets an item expected to cost `estimateUsd` through (a ticket, its estimate now in flight), or
     * `stop` when the job's budget is reached; the first stop marks the job.
     */
    async admit(job: JobRecord, estimateUsd: number): Promise<BudgetTicket | 'stop'> {
      const max = job.maxCostUsd;
      if (max === undefined) return { jobId: job.id, estimateUsd: 0 };
      if (job.budgetStopped) return 'stop';
      const s = await spentOf(job);
      if (!budgetAllows({ maxCostUsd: max, spentUsd: s.spentUsd, inFlightUsd: s.inFlightUsd }, estimateUsd)) {
        await deps.stores.jobs.stopForBudget(job.id, budgetNotice(max));
        return 'stop';
      }
      s.inFlightUsd += estimateUsd;
      return { jobId: job.id, estimateUsd };
    },

    /**
     * The item's call is over: its estimate leaves the in-flight sum and what it cost joins the
     * spent one until the next read (an answer counted by that read too is counted twice: it errs
     * towards stopping early).
     */
    done(ticket: BudgetTicket, costUsd: number): void {
      const s = seen.get(ticket.jobId);
      if (!s) return;
      s.inFlightUsd = Math.max(0, s.inFlightUsd - ticket.estimateUsd);
      s.spentUsd += costUsd;
      if (costUsd > 0) s.answered += 1;
    },
  };
}
