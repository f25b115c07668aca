/**
 * Repair drafts: the paid first answer of an item whose answer missed its schema, kept in the
 * bucket while the repair call waits for its slot (`core/structured-output.ts`). A paid answer is
 * never bought twice: whichever delivery comes next for the item reads the draft and makes only the
 * repair call. Once the repair has answered, a failed outcome is parked in the draft before it is
 * written (a succeeded one is parked by `paid-answer.ts`), so a delivery after a lost write records
 * it rather than calling again.
 */
import type { ItemOutcome, Usage } from '../core/jobs.js';
import type { Logger } from '../platform/logger.js';
import { isMissingObject, type ObjectStore, repairDraftName } from '../platform/object-store.js';
import type { ItemRef } from '../platform/store/items.js';
import { PARK_MARGIN_MS, type Persist } from './paid-answer.js';

/** A first answer that did not match the schema, and why. */
export interface RepairDraft {
  response: unknown;
  usage: Usage;
  costUsd: number;
  problem: string;
  /** The item's outcome once the repair answered and missed too, parked before it is written. */
  outcome?: ItemOutcome & { state: 'failed' };
}

export function createRepairDrafts(deps: { objects: ObjectStore; logger: Logger; persist: Persist }) {
  return {
    /** Keeps the draft, its write retried until the lease's end (less the parking margin). */
    async saveRepairDraft(lease: ItemRef & { untilMs: number }, draft: RepairDraft): Promise<void> {
      const name = repairDraftName(lease.jobId, lease.itemId);
      await deps.persist(
        'repair draft',
        lease,
        () => deps.objects.putJson(name, draft),
        lease.untilMs - PARK_MARGIN_MS,
      );
    },

    /** The item's draft, if an earlier delivery left one. */
    async findRepairDraft(jobId: string, itemId: string): Promise<RepairDraft | undefined> {
      try {
        const draft = (await deps.objects.getJson(repairDraftName(jobId, itemId))) as RepairDraft | null;
        return draft && typeof draft.problem === 'string' ? draft : undefined;
      } catch (err) {
        if (isMissingObject(err)) return undefined;
        throw err;
      }
    },

    /** Drops a draft once the item's outcome is written (a copy left behind is harmless). */
    async dropRepairDraft(jobId: string, itemId: string): Promise<void> {
      await deps.objects
        .delete(repairDraftName(jobId, itemId))
        .catch((err: Error) =>
          deps.logger.warn(
            { event: 'item.repair_draft_delete_failed', jobId, itemId, err: err.message },
            'could not delete a repair draft',
          ),
        );
    },
  };
}
