/**
 * The worker's structured-output step (after the call, before the record): an answer whose request
 * gives a schema is checked (`core/answer-check.ts`). A miss keeps the paid answer as a repair draft
 * and plans the repair call on the model's ledger as a call of its own (a new task at its slot); the
 * delivery that makes it records the repaired answer, or, on a second miss, the item's error
 * (`SCHEMA_MISMATCH`). Usage and cost are both calls'.
 */
import { checkAnswer } from '../core/answer-check.js';
import type { ItemOutcome, ItemRecord, JobRecord, Usage } from '../core/jobs.js';
import {
  answerSchemaOf,
  type JsonSchema,
  repairRequest,
  schemaMismatchError,
} from '../core/structured-output.js';
import { plannedTokens } from '../core/tokens.js';
import type { Lease } from '../lifecycle/lifecycle.js';
import type { RepairDraft } from '../lifecycle/repair-drafts.js';
import type { Logger } from '../platform/logger.js';
import type { WorkerDeps, WorkerReply } from './handler.js';

/** A checked item's state: its schema, and the draft of its first answer once that one missed. */
export interface Checked {
  schema: JsonSchema;
  draft?: RepairDraft;
}

/** Tokens a repair turn adds besides the first answer (its fixed text and the problem). */
const REPAIR_TURN_TOKENS = 200;

/** What the step needs of the delivery running the item. */
export interface CheckedDelivery {
  job: JobRecord;
  item: ItemRecord;
  lease: () => Lease;
  finish: (outcome: ItemOutcome, event: string) => Promise<WorkerReply>;
  log: Logger;
}

/**
 * The item's schema and, for an item leased before (only a delivery can have left one), the draft of
 * its first answer; undefined when its answer is not checked.
 */
export async function checkedOf(
  job: JobRecord,
  item: ItemRecord,
  deps: WorkerDeps,
): Promise<Checked | undefined> {
  const schema = answerSchemaOf(item.request);
  if (!schema) return undefined;
  const draft = item.attempts > 0 ? await deps.lifecycle.findRepairDraft(job.id, item.id) : undefined;
  return { schema, ...(draft ? { draft } : {}) };
}

/** The request to send: the item's own, or, with a draft, the repair call's. */
export function requestFor(checked: Checked | undefined, request: ItemRecord['request']) {
  const draft = checked?.draft;
  return draft ? repairRequest(request, draft.response, draft.problem) : request;
}

/**
 * Records an answer that was paid for, checked against the schema: matched (or not checkable) →
 * succeeded; a first miss → a repair planned; a miss of the repair → failed with the problem.
 */
export async function recordChecked(
  checked: Checked,
  answer: ItemOutcome & { state: 'succeeded' },
  run: CheckedDelivery,
  deps: WorkerDeps,
): Promise<WorkerReply> {
  const { draft } = checked;
  const verdict = checkAnswer(checked.schema, answer.response);
  const both = draft ? withDraft(answer, draft) : answer;
  const ended = (outcome: ItemOutcome, event: string) => endWith(outcome, event, Boolean(draft), run, deps);
  if (verdict.ok === 'unchecked') {
    run.log.warn({ event: 'item.schema_unchecked', reason: verdict.reason }, 'answer recorded unchecked');
    return ended(both, 'item.succeeded');
  }
  if (verdict.ok) return ended(both, draft ? 'item.repaired' : 'item.succeeded');
  if (!draft) return planRepair(answer, verdict.problem, run, deps);
  const failed = {
    state: 'failed' as const,
    error: schemaMismatchError(verdict.problem),
    usage: both.usage,
    costUsd: both.costUsd,
  };
  // Paid for: parked in the draft before it is written, so a lost write is recorded, not bought again.
  await deps.lifecycle.saveRepairDraft(run.lease(), { ...draft, outcome: failed });
  return ended(failed, 'item.schema_mismatch');
}

/** Records the outcome a repair delivery parked in the draft (`RepairDraft.outcome`): no call. */
export function recordParkedFailure(checked: Checked, run: CheckedDelivery, deps: WorkerDeps) {
  return endWith(checked.draft!.outcome!, 'item.schema_mismatch', true, run, deps);
}

/** Writes the outcome, then drops the draft (when there is one) the item no longer needs. */
async function endWith(
  outcome: ItemOutcome,
  event: string,
  hasDraft: boolean,
  run: CheckedDelivery,
  deps: WorkerDeps,
): Promise<WorkerReply> {
  const reply = await run.finish(outcome, event);
  if (hasDraft) await deps.lifecycle.dropRepairDraft(run.job.id, run.item.id);
  return reply;
}

/** A first miss: the answer kept as a draft, the repair call planned at its own slot, the item given back. */
async function planRepair(
  answer: ItemOutcome & { state: 'succeeded' },
  problem: string,
  run: CheckedDelivery,
  deps: WorkerDeps,
): Promise<WorkerReply> {
  await deps.lifecycle.saveRepairDraft(run.lease(), {
    response: answer.response,
    usage: answer.usage,
    costUsd: answer.costUsd,
    problem,
  });
  const tokens = plannedTokens(
    run.item.estimatedTokens + answer.usage.outputTokens + REPAIR_TURN_TOKENS,
    run.job.tokenRatio,
  );
  const slotMs = await deps.planner.planRepair(run.job, run.item, tokens);
  await deps.lifecycle.release(run.lease(), slotMs);
  run.log.info(
    { event: 'item.repair_planned', slotMs, problem },
    'the answer missed its schema; repair planned',
  );
  return { status: 200, body: { outcome: 'repair-planned' } };
}

/** The repair's answer with the first one's usage and cost added: the item paid for both. */
function withDraft(
  answer: ItemOutcome & { state: 'succeeded' },
  draft: RepairDraft,
): ItemOutcome & { state: 'succeeded' } {
  return { ...answer, usage: addUsage(answer.usage, draft.usage), costUsd: answer.costUsd + draft.costUsd };
}

function addUsage(a: Usage, b: Usage): Usage {
  const cached =
    ((a as { cachedTokens?: number }).cachedTokens ?? 0) +
    ((b as { cachedTokens?: number }).cachedTokens ?? 0);
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    ...(cached > 0 ? { cachedTokens: cached } : {}),
  };
}
