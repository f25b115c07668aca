import type { JobRecord, NewItem } from '../core/jobs.js';
import { plannedTokens } from '../core/tokens.js';
import type { PlannerDeps } from './plan.js';

/**
 * Planning a pipeline's units (part of the planner): the units of an item's next step are planned
 * as they are made, each on its own model's ledger, so a long pipeline streams (early items' later
 * steps run while late items' first step still does). Their slots come first, then the units
 * (stored with the due time of their slot: create-if-absent, so a repeat stores nothing twice),
 * then their tasks: a crash after the store leaves units the reconciler's overdue sweep gives a
 * task; a crash before it leaves only unused slots.
 */
export function createUnitPlanner(deps: PlannerDeps, dueBy: (plannedMs: number) => number) {
  const clock = deps.now ?? Date.now;
  return {
    /** Stores and plans units of one unit job (one step and branch, one model); how many it planned. */
    async planUnits(
      unitJob: Pick<JobRecord, 'id' | 'model' | 'tokenRatio'>,
      units: NewItem[],
    ): Promise<void> {
      if (units.length === 0) return;
      const quota = deps.quotas.models[unitJob.model];
      if (!quota) throw new Error(`unknown model ${unitJob.model}`);
      const slots = await deps.stores.ledger.reserve(
        unitJob.model,
        units.map((u) => plannedTokens(u.estimatedTokens, unitJob.tokenRatio)),
        quota,
        deps.quotas.headroom,
        { jobId: unitJob.id, ramp: deps.quotas.queueRamp },
      );
      // No slot (the unit job is over: its pipeline was cancelled): nothing to send.
      const planned = slots.map((plannedMs, n) => ({ unit: units[n]!, plannedMs: plannedMs ?? clock() }));
      if (planned.length === 0) return;
      await deps.stores.items.createMany(
        unitJob.id,
        planned.map(({ unit, plannedMs }) => ({ ...unit, plannedDueByMs: dueBy(plannedMs) })),
      );
      await deps.tasks.enqueueItems(
        unitJob.model,
        unitJob.id,
        planned.map(({ unit, plannedMs }) => ({ itemId: unit.id, index: unit.index, plannedMs })),
      );
    },
  };
}
