import { partLimitsFor } from '../core/batch.js';
import { STAGING_PREFIX } from '../core/bucket-input.js';
import type { NewItem } from '../core/jobs.js';
import type { Quotas } from '../core/quotas.js';
import { stagedSet } from '../core/staged-set.js';
import type { UnitJobDraft } from '../lifecycle/pipeline-jobs.js';
import type { ObjectStore } from '../platform/object-store.js';

/**
 * A batch job's set, staged in the bucket as JSONL (`staging/{id}.jsonl`, one line per item, in
 * order) for the tick to stream into Files API uploads, split into batches within the model's
 * limits (core/staged-set.ts). Items with media stay on the realtime path. Marks each batch item
 * (`batchPart`).
 */
export async function stageBatchJob(
  id: string,
  model: string,
  items: NewItem[],
  deps: { objects: Pick<ObjectStore, 'writeStream'>; quotas: Quotas },
) {
  const object = `${STAGING_PREFIX}${id}.jsonl`;
  const { lines, parts, batchItems } = stagedSet(items, partLimitsFor(model, deps.quotas));
  await deps.objects.writeStream(object, lines, { contentType: 'application/jsonl' });
  return { object, parts, batchItems };
}

/**
 * A batch pipeline's first step: each of its unit jobs is staged as an ordinary batch job of its
 * branch's model (its units are made from the inputs alone), with its batches. Later steps' unit
 * jobs are staged by the lifecycle once every item's step before has ended
 * (lifecycle/pipeline-batch.ts).
 */
export async function stageFirstStep(
  drafts: UnitJobDraft[],
  deps: { objects: Pick<ObjectStore, 'writeStream'>; quotas: Quotas },
): Promise<UnitJobDraft[]> {
  return Promise.all(
    drafts.map(async (draft) => {
      if (draft.spec.unitOf?.step !== 0) return draft;
      const staged = await stageBatchJob(draft.spec.id, draft.spec.model, draft.items, deps);
      const total = draft.spec.total;
      return {
        spec: {
          ...draft.spec,
          staged: { object: staged.object },
          paths: { realtime: total - staged.batchItems, batch: staged.batchItems },
        },
        items: draft.items,
        runs: staged.parts,
      };
    }),
  );
}
