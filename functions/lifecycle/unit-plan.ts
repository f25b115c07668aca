import type { JobRecord, NewItem } from '../core/jobs.js';
import { plannedTokens } from '../core/tokens.js';
import type { PlannerDeps } from './plan.js';
import { type createSpendPlanner, spendLimitOf } from './plan-spend.js';

/**
 * Planning a pipeline's units (part of the planner): the units of an item's next step are planned
 * as they are made, each on its own model's ledger, so a long pipeline streams (early items' later
 * steps run while late items' first step still does). Their slots come first, then the units
 * (stored with the due time of their slot: create-if-absent, so a repeat stores nothing twice),
 * then their tasks: a unit stored without its task is given one by the reconciler's overdue sweep;
 * a crash before either leaves only unused slots. Never a task before its unit: its delivery would
 * find no unit and drop it.
 *
 * Units are planned in groups, one per unit job (group commit): while a group's plan is being
 * written, the units that arrive meanwhile wait and go together in the next. A ledger takes one
 * transaction at a time (platform/store/ledger.ts), so one per unit would cap a step at the few
 * transactions a second the ledger's document takes; a group costs one whatever its size. Each
 * caller's promise settles when its own group is written (or failed), so a delivery still ends
 * only once its item's next step is planned.
 *
 * Units spend like items: with a spend limit (`spendPer10MinUsd`) each group's expected cost is
 * drawn on the project's spend ledger in the same transaction as its slots (./plan-spend.ts), as a
 * page of an ordinary job's is, so a pipeline's later steps cannot outrun the limit its first
 * step's planning kept.
 */

type UnitJobRef = Pick<JobRecord, 'id' | 'model'> & Partial<Pick<JobRecord, 'tokenRatio'>>;

interface Group {
  unitJob: UnitJobRef;
  units: NewItem[];
  waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
}

export function createUnitPlanner(
  deps: PlannerDeps,
  dueBy: (plannedMs: number) => number,
  spend: ReturnType<typeof createSpendPlanner>,
) {
  const clock = deps.now ?? Date.now;
  const paces = spendLimitOf(deps.quotas) !== undefined;

  /**
   * The spend side of a group (undefined without a spend limit): its unit job read for what its
   * answers cost so far (one read per group), and a notice on it while the limit holds units back.
   */
  const spendFor = async ({ unitJob, units }: Group, tokens: number[]) => {
    const job = paces ? await deps.stores.jobs.get(unitJob.id) : undefined;
    const paced = job && (await spend.planFor(job, units, tokens));
    return paced && { plan: paced.plan, noteHeld: () => spend.noteHeld(job, paced.heldUntilMs()) };
  };
  /** Per unit job: the group waiting for the one being written (absent: none is being written). */
  const waiting = new Map<string, Group | undefined>();

  /** Plans one group: its slots, its units with their due times, their tasks. */
  const planGroup = async (group: Group): Promise<void> => {
    const { unitJob, units } = group;
    const quota = deps.quotas.models[unitJob.model];
    if (!quota) throw new Error(`unknown model ${unitJob.model}`);
    const tokens = units.map((u) => plannedTokens(u.estimatedTokens, unitJob.tokenRatio));
    const paced = await spendFor(group, tokens);
    const ramp = deps.quotas.queueRamp;
    const slots = await deps.stores.ledger.reserve(unitJob.model, tokens, quota, deps.quotas.headroom, {
      jobId: unitJob.id,
      // One unit a task, even while the queue ramps: units are planned a few at a time as the step
      // before answers, so a ramping second's units would come in many small tasks, more than the
      // queue's ramp sends (they fell behind their plan and were planned again).
      ramp: ramp && { ...ramp, itemsPerTask: 1 },
      ...(paced ? { spend: paced.plan } : {}),
    });
    await paced?.noteHeld();
    // No slot: the unit job is over (its pipeline was cancelled), nothing to send.
    const planned = slots.map((plannedMs, n) => ({ unit: units[n]!, plannedMs: plannedMs ?? clock() }));
    if (planned.length === 0) return;
    // The units, then their tasks: a task planned now is delivered within milliseconds, and a
    // delivery that finds no unit drops its task (a unit job's item that does not exist is gone for
    // good), so a task must never be there before its unit. A crash between leaves units with no
    // task: the reconciler's overdue sweep gives them one.
    await deps.stores.items.createMany(
      unitJob.id,
      planned.map(({ unit, plannedMs }) => ({ ...unit, plannedDueByMs: dueBy(plannedMs) })),
    );
    await deps.tasks.enqueueItems(
      unitJob.model,
      unitJob.id,
      planned.map(({ unit, plannedMs }) => ({ itemId: unit.id, index: unit.index, plannedMs })),
    );
  };

  /** Writes `group`, then whatever gathered meanwhile, until nothing waits. */
  const drain = async (first: Group): Promise<void> => {
    for (let group: Group | undefined = first; group; ) {
      try {
        await planGroup(group);
        for (const w of group.waiters) w.resolve();
      } catch (err) {
        for (const w of group.waiters) w.reject(err);
      }
      group = waiting.get(first.unitJob.id);
      if (group) waiting.set(first.unitJob.id, undefined);
      else waiting.delete(first.unitJob.id);
    }
  };

  return {
    /** Stores and plans units of one unit job (one step and branch, one model). */
    planUnits(unitJob: UnitJobRef, units: NewItem[]): Promise<void> {
      if (units.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const waiter = { resolve, reject };
        if (!waiting.has(unitJob.id)) {
          // Nothing is being written for this unit job: this group goes now.
          waiting.set(unitJob.id, undefined);
          void drain({ unitJob, units: [...units], waiters: [waiter] });
          return;
        }
        const group = waiting.get(unitJob.id) ?? { unitJob, units: [], waiters: [] };
        group.units.push(...units);
        group.waiters.push(waiter);
        waiting.set(unitJob.id, group);
      });
    },
  };
}
