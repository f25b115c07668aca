import { isTerminalJob } from '../core/jobs.js';
import type { ReconcileCursor } from '../platform/store/jobs.js';
import { attempt, type Item, type Run } from './reconcile-run.js';

/**
 * The reconciler's item sweep (./reconcile.ts): pending items no task will deliver, their lease run
 * out or their due time past, each given a new task, or failed after MAX_ROUNDS rounds in which a
 * delivery reached them, or MAX_UNREACHED_ROUNDS in which none did.
 */

/** New tasks an item may get from the reconciler, each reaching it, before it is failed. */
export const MAX_ROUNDS = 3;

/**
 * New tasks an item may get that never reach it (the worker's front refused every attempt, an
 * overloaded or misconfigured service) before it is failed. The item's own runs are what MAX_ROUNDS
 * limits; a round the item never saw says nothing against it, so it is given more patience, a
 * due window a round: a long outage, not a few slow minutes, fails it.
 */
export const MAX_UNREACHED_ROUNDS = 10;

/**
 * Where an item the sweep found stuck stands: whether the round ending reached it (a delivery
 * claimed it since its last new task: `attempts` grew past `roundAttempts`; an expired lease always
 * did), and the limit it has run into, if any.
 */
export function roundVerdict(
  item: Pick<Item, 'attempts' | 'lease' | 'rounds' | 'roundAttempts' | 'unreachedRounds'>,
): { unreached: boolean; giveUp?: 'reached' | 'unreached' } {
  const unreached = !item.lease && item.attempts <= (item.roundAttempts ?? 0);
  const unreachedRounds = (item.unreachedRounds ?? 0) + (unreached ? 1 : 0);
  const reachedRounds = item.rounds + 1 - unreachedRounds;
  if (reachedRounds > MAX_ROUNDS) return { unreached, giveUp: 'reached' };
  if (unreachedRounds > MAX_UNREACHED_ROUNDS) return { unreached, giveUp: 'unreached' };
  return { unreached };
}

/** Expired leases, and (from the cursor on) pending items past their due time: each given its way forward. */
export async function sweepItems(run: Run, cursor: ReconcileCursor, next: ReconcileCursor): Promise<void> {
  const { deps, clock } = run;
  const limit = deps.limits?.items ?? 200;
  const expired = await attempt(
    run,
    'list_expired',
    () => deps.stores.items.listExpiredLeases(clock(), limit),
    [],
  );
  let overdue: Item[] = [];
  if (deps.orphanSweep !== false && run.paused) {
    const page = await attempt(
      run,
      'list_overdue',
      () => deps.stores.items.listOverdue(clock(), limit, cursor.overdueAfter),
      undefined,
    );
    if (page) {
      overdue = page.items;
      // Past the last page, the next run starts again from the earliest due.
      next.overdueAfter = page.next;
    }
  }
  const seen = new Set<string>();
  for (const item of [...expired, ...overdue]) {
    const key = `${item.jobId}/${item.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      await reviveItem(run, item);
    } catch (err) {
      run.report.errors++;
      deps.logger.error(
        { event: 'reconcile.item_error', jobId: item.jobId, itemId: item.id, err: (err as Error).message },
        'could not give the item a way forward; the next run tries again',
      );
    }
  }
}

/**
 * Gives one item a new task, or fails it after {@link MAX_ROUNDS}. The task first, then the item
 * write (precondition: the item as read): a crash between leaves a duplicate task, harmless, and
 * the item as it was, so the next run finds it again; never an item with no task and no lease.
 */
async function reviveItem(run: Run, item: Item): Promise<void> {
  const { deps, clock } = run;
  const job = await run.jobOf(item.jobId);
  // A cancelled job's items are the cancel's to end (below); an unknown job has nothing to run.
  if (!job || isTerminalJob(job.status)) return;
  // A live lease is its holder's; when it runs out, the expired-lease sweep finds the item.
  if (item.lease && item.lease.untilMs > clock()) return;
  const orphan = !item.lease;
  // A paused queue holds its tasks back: they come when it resumes.
  if (orphan && (!run.paused || run.paused.has(job.model))) return;
  const log = deps.logger.child({ jobId: job.id, itemId: item.id });
  const ref = { jobId: job.id, itemId: item.id, version: item.version, shards: job.counterShards };
  const verdict = roundVerdict(item);
  if (verdict.giveUp) {
    const times = `${item.rounds + 1} times (${item.attempts} attempts)`;
    const message =
      verdict.giveUp === 'unreached'
        ? `No delivery reached the item: no task got it to the worker in time, ${times}.`
        : orphan
          ? `No delivery finished the item: no task delivered it in time, ${times}.`
          : `No delivery finished the item: its lease ran out ${times}.`;
    const ended = await deps.lifecycle.giveUp(ref, item, { code: 500, status: 'ABORTED', message });
    if (ended === 'failed') {
      await count(run, job.id, 'failed');
      log.warn(
        { event: 'reconcile.item_failed', rounds: item.rounds, orphan, reason: verdict.giveUp },
        message,
      );
    } else if (ended === 'recovered') {
      run.report.recovered++;
      log.warn(
        { event: 'reconcile.item_recovered', rounds: item.rounds },
        'no delivery finished the item, but one had paid for its answer and parked it: recorded',
      );
    }
    return;
  }
  const round = item.rounds + 1;
  const slotMs = await deps.planner.retask(job, item, round);
  if (slotMs === undefined) {
    log.warn(
      { event: 'reconcile.item_unplanned', round },
      'no slot for the item (job over or model unknown)',
    );
    return;
  }
  const next = { dueByMs: deps.planner.dueBy(slotMs), attempts: item.attempts, unreached: verdict.unreached };
  if (!(await deps.stores.items.retask(ref, next))) return;
  await count(run, job.id, orphan ? 'orphans' : 'retasked');
  if (orphan) {
    log.warn(
      { event: 'reconcile.item_orphaned', round, slotMs, unreached: verdict.unreached },
      'no task delivered the item in time; new task',
    );
  } else {
    log.warn({ event: 'reconcile.item_retasked', round, slotMs }, 'lease ran out with no outcome; new task');
  }
}

/** Counts an action in the run's report and in the job's view. */
async function count(run: Run, jobId: string, what: 'retasked' | 'failed' | 'orphans'): Promise<void> {
  run.report[what]++;
  await run.deps.stores.jobs.countReconcile(jobId, what);
}
