/**
 * What must hold after a simulated run, whatever the faults (issue 17's "nothing lost"):
 * - `job-terminal:<why>`: every job a client could see ended (and a cancel finished its sweep);
 * - `item-terminal`: no item of an ended job is still pending;
 * - `written-once`: every item of a job got its outcome exactly once (a settle or a cancel sweep);
 * - `totals`: the job's counts, tokens and cost equal the sum over its items;
 * - `answer-right`: a succeeded item holds the answer to its own prompt;
 * - `gemini-once`: an item was billed by Gemini at most once, plus once per lease that truly ran
 *   out under a delivery (the only excuse to call again);
 * - `lease-outlived`: no delivery still works on an item (writes with its lease) after its lease ran
 *   out and the item was taken over: a lease must outlast its work, or be renewed;
 * - `callback`: a job with a callback URL was notified at least once, once it ended.
 */
import type { ItemRecord, JobRecord } from '../../functions/core/jobs.js';
import type { Stores } from '../../functions/platform/store/index.js';
import type { FakeDb } from '../helpers/fake-stores.js';
import { answerOf, type SimGemini } from './gemini.js';

export interface Violation {
  invariant: string;
  detail: string;
}

const keyOf = (jobId: string, itemId: string) => `${jobId}/${itemId}`;
const bump = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);

/**
 * Records the effects the stores really had (below the fault wrappers, so an ambiguous commit
 * counts): outcomes written, items swept by a cancel, leases taken over after they ran out.
 */
export class Effects {
  readonly settles = new Map<string, number>();
  readonly sweeps = new Map<string, number>();
  readonly expiries = new Map<string, number>();
  /** Lease versions taken over after they ran out, by item. */
  private readonly overtaken = new Map<string, Set<string>>();
  /** Writes (settle, release) by a delivery whose lease had been taken over: it was still working. */
  readonly outlived = new Map<string, number>();

  /** Notes a write with `ref`'s lease: its holder was alive after its lease was taken over. */
  private wrote(ref: { jobId: string; itemId: string; version: string }): void {
    const key = keyOf(ref.jobId, ref.itemId);
    if (this.overtaken.get(key)?.has(ref.version)) bump(this.outlived, key);
  }

  /** A lease that ran out was taken over (a new claim, or the reconciler's retask) at `ref.version`. */
  private overtake(ref: { jobId: string; itemId: string; version: string }): void {
    const key = keyOf(ref.jobId, ref.itemId);
    bump(this.expiries, key);
    this.overtaken.set(key, (this.overtaken.get(key) ?? new Set()).add(ref.version));
  }

  observe(db: FakeDb): Stores {
    const items = db.stores.items;
    const effects = this;
    return {
      ...db.stores,
      items: {
        ...items,
        async settle(ref, outcome) {
          effects.wrote(ref);
          const written = await items.settle(ref, outcome);
          if (written) bump(effects.settles, keyOf(ref.jobId, ref.itemId));
          return written;
        },
        async sweepPending(jobId, outcome) {
          const swept = await items.sweepPending(jobId, outcome);
          for (const id of swept) bump(effects.sweeps, keyOf(jobId, id));
          return swept;
        },
        async lease(ref, leaseMs, nowMs) {
          // Taking over a lease that ran out; taking over a live one is never excused.
          const before = db.item(ref.jobId, ref.itemId)?.lease;
          const leased = await items.lease(ref, leaseMs, nowMs);
          if (leased && before && before.untilMs <= nowMs) effects.overtake(ref);
          return leased;
        },
        async release(ref, plannedMs) {
          effects.wrote(ref);
          return items.release(ref, plannedMs);
        },
        async retask(ref, next) {
          const done = await items.retask(ref, next);
          if (done) effects.overtake(ref);
          return done;
        },
      },
    };
  }
}

export interface CheckInput {
  db: FakeDb;
  effects: Effects;
  gemini: SimGemini;
  /** Callbacks received, by job id. */
  notified: Map<string, number>;
  promptOf: (jobId: string, index: number) => string;
  /** Items that still have a task (`jobId/itemId`), and whether its queue is paused. */
  liveTasks: Map<string, { paused: boolean }>;
}

/** Every invariant over every job the run made visible. */
export function checkInvariants(input: CheckInput): Violation[] {
  const out: Violation[] = [];
  for (const job of input.db.jobs.values()) {
    const items = [...(input.db.items.get(job.id)?.values() ?? [])];
    checkJob(job, items, input.liveTasks, out);
    for (const item of items) checkItem(job, item, input, out);
    // A job that never ended is reported as such; a callback is owed once it has.
    const ended = job.status !== 'queued' && job.status !== 'running' && !job.cancelPending;
    if (ended && job.callbackUrl && !input.notified.get(job.id))
      out.push({ invariant: 'callback', detail: `job ${job.id} (${job.status}) was never notified` });
  }
  return out;
}

function checkJob(
  job: JobRecord,
  items: ItemRecord[],
  liveTasks: CheckInput['liveTasks'],
  out: Violation[],
): void {
  const pending = items.filter((i) => i.state === 'pending');
  const describe = pending
    .slice(0, 5)
    .map((i) => `#${i.index} lease=${i.lease ? 'held' : 'none'} attempts=${i.attempts} rounds=${i.rounds}`)
    .join('; ');
  if (job.status === 'queued' || job.status === 'running' || job.cancelPending) {
    out.push({
      invariant: `job-terminal:${stuckKind(job, pending, liveTasks)}`,
      detail: `job ${job.id} is ${job.status}${job.cancelPending ? ' (cancel pending)' : ''}, enqueuedThrough ${job.enqueuedThrough}/${job.total}, ${pending.length} pending: ${describe}`,
    });
    return;
  }
  if (pending.length > 0)
    out.push({ invariant: 'item-terminal', detail: `job ${job.id} ${job.status} with pending ${describe}` });
  const sum = { succeeded: 0, failed: 0, cancelled: 0, promptTokens: 0, outputTokens: 0, costUsd: 0 };
  for (const i of items) {
    if (i.state !== 'pending') sum[i.state]++;
    sum.promptTokens += i.usage?.promptTokens ?? 0;
    sum.outputTokens += i.usage?.outputTokens ?? 0;
    sum.costUsd += i.costUsd ?? 0;
  }
  const f = job.final;
  const same =
    f &&
    f.counts.succeeded === sum.succeeded &&
    f.counts.failed === sum.failed &&
    f.counts.cancelled === sum.cancelled &&
    f.usage.promptTokens === sum.promptTokens &&
    f.usage.outputTokens === sum.outputTokens &&
    Math.abs(f.costUsd - sum.costUsd) < 1e-8;
  if (!same)
    out.push({
      invariant: 'totals',
      detail: `job ${job.id} ${job.status}: final ${JSON.stringify(f && { ...f.counts, ...f.usage, costUsd: f.costUsd })} but items sum to ${JSON.stringify(sum)}`,
    });
}

/**
 * Why a job did not end, for sorting failures: a cancel left halfway; items with no lease and no
 * task (nothing will ever deliver them: issue 17, scenario 1); items whose only task sits in a
 * queue paused for good (scenario 9); items still leased; or nothing pending (never finished).
 */
function stuckKind(job: JobRecord, pending: ItemRecord[], liveTasks: CheckInput['liveTasks']): string {
  if (job.cancelPending) return 'cancel-pending';
  if (pending.length === 0) return 'never-finished';
  const unleased = pending.filter((i) => i.lease === null);
  const task = (i: ItemRecord) => liveTasks.get(`${job.id}/${i.id}`);
  if (unleased.some((i) => !task(i))) return 'orphaned-items';
  if (unleased.some((i) => task(i)?.paused)) return 'paused-queue';
  if (unleased.length > 0) return 'tasks-live';
  return 'leased-items';
}

function checkItem(job: JobRecord, item: ItemRecord, input: CheckInput, out: Violation[]): void {
  const key = keyOf(job.id, item.id);
  const writes = (input.effects.settles.get(key) ?? 0) + (input.effects.sweeps.get(key) ?? 0);
  const ended = item.state !== 'pending';
  if ((ended && writes !== 1) || writes > 1)
    out.push({
      invariant: 'written-once',
      detail: `item ${key} (${item.state}) got ${writes} outcome writes`,
    });
  const prompt = input.promptOf(job.id, item.index);
  if (item.state === 'succeeded') {
    const text = (item.response as { candidates?: Array<{ content: { parts: Array<{ text: string }> } }> })
      ?.candidates?.[0]?.content.parts[0]?.text;
    if (text !== answerOf(prompt).text)
      out.push({ invariant: 'answer-right', detail: `item ${key} holds "${text}" for "${prompt}"` });
  }
  if (input.effects.outlived.get(key))
    out.push({
      invariant: 'lease-outlived',
      detail: `item ${key}: a delivery still worked on it after its lease ran out and was taken over`,
    });
  const billed = input.gemini.billed.get(prompt) ?? 0;
  const excused = input.effects.expiries.get(key) ?? 0;
  if (billed > 1 + excused)
    out.push({
      invariant: 'gemini-once',
      detail: `item ${key} billed ${billed} times with ${excused} lease expiries (${input.gemini.calls.get(prompt)} calls)`,
    });
}
