/**
 * An in-memory database behind the same narrow store interfaces as Firestore (`functions/platform/
 * store/`). It keeps the contracts those interfaces document (versions as preconditions, outcomes
 * counted once in the same "commit", sweeps that skip the counters, idempotency keys created once),
 * so lifecycle and handler tests exercise the real rules, which live in `functions/lifecycle/`.
 */

import { randomUUID } from 'node:crypto';
import { decreaseAdaptiveRate } from '../../functions/core/adaptive-rate.js';
import { type JobPlan, releaseJobPlan, reserveForJob } from '../../functions/core/job-plan.js';
import {
  type ItemRecord,
  isTerminalJob,
  type JobRecord,
  newJobFields,
  type Usage,
} from '../../functions/core/jobs.js';
import type { DispatchLedger } from '../../functions/core/rate.js';
import { type SpendLedger, spendGate } from '../../functions/core/spend-pace.js';
import { cutAfterTokens429 } from '../../functions/core/token-cut.js';
import {
  addEvidence,
  evidenceSince,
  foldEvidence,
  itemEvidence,
  NO_EVIDENCE,
  type TokenEvidence,
} from '../../functions/core/token-evidence.js';
import { sumTotals, type Totals } from '../../functions/core/totals.js';
import type { CallbackOrder, CallbackRecord } from '../../functions/platform/store/callbacks.js';
import { type CounterValues, counterAmounts } from '../../functions/platform/store/counters.js';
import type { Stores } from '../../functions/platform/store/index.js';
import type { ItemOutcomeRecord } from '../../functions/platform/store/item-codec.js';
import type { ItemRef, OverdueCursor, StoredOutcome } from '../../functions/platform/store/items.js';
import type { IdempotencyRecord, ReconcileCursor } from '../../functions/platform/store/jobs.js';
import { ReserveAbandonedError } from '../../functions/platform/store/ledger.js';
import type { CacheEntry } from '../../functions/platform/store/response-cache.js';

/** Lets other pending promises run, as a network round trip would. */
export const roundTrip = () => new Promise<void>((resolve) => setImmediate(resolve));

type StoredItem = ItemRecord & { counted: boolean };

/** An outcome for test setup. */
export type SettledOutcome =
  | { state: 'succeeded'; response: unknown; usage?: Usage }
  | { state: 'failed'; error: { code: number; status: string; message: string }; usage?: Usage };

/** `store.method`, for counting calls and injecting failures. */
export type StoreMethod = `${keyof Stores}.${string}`;

export class FakeDb {
  readonly jobs = new Map<string, JobRecord>();
  /** Each job's enqueue holder (`JobsStore.holdEnqueue`). */
  readonly enqueueHolders = new Map<string, { holder: string; untilMs: number }>();
  readonly items = new Map<string, Map<string, StoredItem>>();
  readonly ledgers = new Map<string, DispatchLedger>();
  readonly jobPlans = new Map<string, JobPlan>();
  /** The project's spend plan (`ledger.reserve` with `spend`), as `spendLedger/project` holds it. */
  spendLedger: SpendLedger = { buckets: {} };
  /** Token evidence per job, as the counter shards sum it (`counters.evidence`). */
  readonly evidence = new Map<string, TokenEvidence>();
  /** Token evidence per model (`ledger.evidence`), and what each job's plan has folded into it. */
  readonly modelEvidence = new Map<string, TokenEvidence>();
  readonly foldedEvidence = new Map<string, TokenEvidence>();
  readonly pauses = new Map<string, { untilMs: number; reason: string; resumedAtMs?: number }>();
  readonly keys = new Map<string, IdempotencyRecord>();
  /** The callback outbox, by job id. */
  readonly callbacks = new Map<string, CallbackRecord>();
  /** The response cache's entries, by document id. */
  readonly responseCache = new Map<string, CacheEntry>();
  /** The reconciler's cursor (`jobs.writeReconcileCursor`). */
  reconcileCursor: ReconcileCursor = {};
  readonly calls: Record<string, number> = {};
  /** Outcome writes that took effect, and jobs turned terminal by `finish`. */
  completedWrites = 0;
  finishedJobs = 0;
  /**
   * Runs between a cancel sweep's read of the pending items and its writes: where a test lands a
   * concurrent write (a lease, an outcome) that the sweep's per-item precondition must respect.
   */
  beforeSweepWrites: ((jobId: string) => Promise<void> | void) | undefined;
  /** Runs inside `items.countStates`, between its sums and its counts per state. */
  duringCount: ((jobId: string) => Promise<void> | void) | undefined;
  private failures = new Map<string, Error[]>();
  private outages = new Map<string, { down: () => boolean; error: Error }>();
  private versionSeq = 0;
  private commitMicros = 1_700_000_000_000_000;
  readonly stores: Stores;

  constructor(private readonly clock: () => number = Date.now) {
    this.stores = this.build();
  }

  /** The next call of `method` (e.g. `items.settle`) throws `error` (after its round trip). */
  failOnce(method: StoreMethod, error: Error = new Error(`${method}: transient store failure`)): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), error]);
  }

  /** Every call of `method` throws `error` while `down()` holds (a store outage of some length). */
  failWhile(
    method: StoreMethod,
    down: () => boolean,
    error: Error = new Error(`14 UNAVAILABLE: ${method} is unreachable`),
  ): void {
    this.outages.set(method, { down, error });
  }

  item(jobId: string, itemId: string): StoredItem | undefined {
    return this.items.get(jobId)?.get(itemId);
  }

  /** Test setup: ends an item as if a worker had, counters included. */
  settle(jobId: string, itemId: string, outcome: SettledOutcome): void {
    const item = this.item(jobId, itemId);
    if (!item) throw new Error(`no item ${jobId}/${itemId}`);
    this.applyOutcome(item, outcome);
    item.counted = true;
  }

  /** Test setup: holds an item's lease, as a delivery in flight would. */
  lease(jobId: string, itemId: string, untilMs: number): void {
    const item = this.item(jobId, itemId);
    if (!item) throw new Error(`no item ${jobId}/${itemId}`);
    item.lease = { id: 'someone-else', untilMs };
    item.version = this.nextVersion();
  }

  /** The outbox record a job's ending commit writes (a `set`: written again, it starts over). */
  private writeCallback(jobId: string, order: CallbackOrder): void {
    this.callbacks.set(jobId, {
      jobId,
      ...order,
      state: 'pending',
      attempts: 0,
      dueMs: order.sinceMs,
      lastError: null,
      deliveredAtMs: null,
      version: this.nextVersion(),
    });
  }

  private nextVersion(): string {
    this.versionSeq += 1;
    return `v${this.versionSeq}`;
  }

  private async enter(method: string): Promise<void> {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
    await roundTrip();
    const error = this.failures.get(method)?.shift();
    if (error) throw error;
    const outage = this.outages.get(method);
    if (outage?.down()) throw outage.error;
  }

  private applyOutcome(item: StoredItem, outcome: StoredOutcome | SettledOutcome): void {
    item.state = outcome.state;
    if (outcome.state === 'succeeded') {
      if ('responseObject' in outcome && outcome.responseObject) item.responseObject = outcome.responseObject;
      else item.response = structuredClone(outcome.response);
    } else item.error = outcome.error;
    if (outcome.usage) item.usage = outcome.usage;
    if ('costUsd' in outcome && outcome.costUsd !== undefined) item.costUsd = outcome.costUsd;
    if (outcome.state === 'succeeded' && 'tier' in outcome && outcome.tier) {
      item.tier = outcome.tier;
      item.standardCostUsd = outcome.standardCostUsd ?? outcome.costUsd ?? 0;
    }
    if (outcome.state === 'succeeded' && 'cached' in outcome && outcome.cached) item.cached = outcome.cached;
    if ('steps' in outcome && outcome.steps) item.steps = structuredClone(outcome.steps);
    item.finishedAt = new Date(this.clock());
    this.commitMicros += 1;
    item.finishedAtMicros = this.commitMicros;
    item.lease = null;
    item.version = this.nextVersion();
  }

  /** Each job's 429s by model and quotaId (`counters.countQuota429`). */
  readonly quota429s = new Map<string, Record<string, Record<string, number>>>();
  /** Whole counter documents (`counters.put`), by `jobId/docId`. */
  readonly counterDocs = new Map<string, CounterValues>();

  private countedTotals(jobId: string, total: number, all = false): Totals {
    return sumTotals(this.countedParts(jobId, all), total);
  }

  /** What each counted item adds to the counters (as its outcome's increments do). */
  private countedParts(jobId: string, all = false) {
    const items = [...(this.items.get(jobId)?.values() ?? [])].filter((i) => all || i.counted);
    return items.map((i) => counterAmounts(i));
  }

  /** Folds what a job's evidence adds since its last fold into its model's (`ledger.reserve`, `dropJob`). */
  private foldEvidence(model: string, jobId: string, evidence: TokenEvidence): void {
    const added = evidenceSince(evidence, this.foldedEvidence.get(jobId) ?? NO_EVIDENCE);
    this.modelEvidence.set(model, foldEvidence(this.modelEvidence.get(model) ?? NO_EVIDENCE, added));
    this.foldedEvidence.set(jobId, { ...evidence });
  }

  private publicItem(jobId: string, item: StoredItem): ItemRecord & { jobId: string } {
    const { counted: _counted, ...rest } = item;
    return { ...structuredClone(rest), jobId };
  }

  private build(): Stores {
    const db = this;
    const job = (id: string) => db.jobs.get(id);
    const holders = db.enqueueHolders;
    return {
      jobs: {
        async get(jobId) {
          await db.enter('jobs.get');
          const j = job(jobId);
          return j ? structuredClone(j) : undefined;
        },
        async create(spec, enqueueDueMs, idempotency) {
          await db.enter('jobs.create');
          if (idempotency && db.keys.has(idempotency.keyId))
            return { created: false, existing: db.keys.get(idempotency.keyId)! };
          if (db.jobs.has(spec.id)) throw Object.assign(new Error('ALREADY_EXISTS'), { code: 6 });
          db.jobs.set(spec.id, {
            ...newJobFields(spec, enqueueDueMs),
            counterShards: spec.counterShards ?? 16,
            createdAt: new Date(db.clock()),
            version: db.nextVersion(),
          });
          if (idempotency) db.keys.set(idempotency.keyId, { jobId: spec.id, bodyHash: idempotency.bodyHash });
          return { created: true };
        },
        async findIdempotency(keyId) {
          await db.enter('jobs.findIdempotency');
          return db.keys.get(keyId);
        },
        async markRunning(jobId, version) {
          await db.enter('jobs.markRunning');
          const j = job(jobId);
          if (!j || j.version !== version) return;
          j.status = 'running';
          j.startedAt = new Date(db.clock());
          j.version = db.nextVersion();
        },
        async setEnqueued(jobId, through, dueMs, ifVersion) {
          await db.enter('jobs.setEnqueued');
          const j = job(jobId);
          if (!j) throw Object.assign(new Error('NOT_FOUND'), { code: 5 });
          if (ifVersion !== undefined && j.version !== ifVersion) return false;
          Object.assign(j, { enqueuedThrough: through, enqueueDueMs: dueMs, version: db.nextVersion() });
          if (ifVersion !== undefined) holders.delete(jobId);
          return true;
        },
        async holdEnqueue(jobId, holder, nowMs, untilMs) {
          await db.enter('jobs.holdEnqueue');
          const j = job(jobId);
          if (!j) return false;
          const hold = holders.get(jobId);
          if (hold && hold.holder !== holder && hold.untilMs > nowMs) return false;
          holders.set(jobId, { holder, untilMs });
          j.version = db.nextVersion();
          return true;
        },
        async releaseEnqueue(jobId, holder) {
          await db.enter('jobs.releaseEnqueue');
          if (holders.get(jobId)?.holder === holder) {
            holders.delete(jobId);
            const j = job(jobId);
            if (j) j.version = db.nextVersion();
          }
        },
        async setTokenRatio(jobId, ratio) {
          await db.enter('jobs.setTokenRatio');
          const j = job(jobId);
          if (j) Object.assign(j, { tokenRatio: ratio, version: db.nextVersion() });
        },
        async addRetry(jobId, retryId) {
          await db.enter('jobs.addRetry');
          const j = job(jobId);
          if (!j) throw Object.assign(new Error('NOT_FOUND'), { code: 5 });
          if (!j.retries?.includes(retryId))
            Object.assign(j, { retries: [...(j.retries ?? []), retryId], version: db.nextVersion() });
        },
        async setStaged(jobId, staged) {
          await db.enter('jobs.setStaged');
          const j = job(jobId);
          if (!j) throw Object.assign(new Error('NOT_FOUND'), { code: 5 });
          Object.assign(j, { ...structuredClone(staged), version: db.nextVersion() });
        },
        async stopForBudget(jobId, notice) {
          await db.enter('jobs.stopForBudget');
          const j = job(jobId);
          if (!j) throw Object.assign(new Error('NOT_FOUND'), { code: 5 });
          Object.assign(j, { budgetStopped: true, notice, version: db.nextVersion() });
        },
        async setNotice(jobId, notice) {
          await db.enter('jobs.setNotice');
          const j = job(jobId);
          if (j) Object.assign(j, { notice, version: db.nextVersion() });
        },
        async finish(jobId, version, status, totals, startedAt, callback) {
          await db.enter('jobs.finish');
          const j = job(jobId);
          if (!j || j.version !== version) return false;
          if (callback) db.writeCallback(jobId, callback);
          const now = new Date(db.clock());
          Object.assign(j, {
            status,
            final: totals,
            notice: null,
            finishedAt: now,
            version: db.nextVersion(),
          });
          if (!startedAt) j.startedAt = now;
          db.finishedJobs += 1;
          return true;
        },
        async cancel(jobId) {
          await db.enter('jobs.cancel');
          const j = job(jobId);
          if (!j) return undefined;
          if (isTerminalJob(j.status)) return { job: structuredClone(j), changed: false };
          Object.assign(j, {
            status: 'cancelled',
            finishedAt: new Date(db.clock()),
            notice: null,
            cancelPending: true,
            version: db.nextVersion(),
          });
          return { job: structuredClone(j), changed: true };
        },
        async completeCancel(jobId, totals, version, callback) {
          await db.enter('jobs.completeCancel');
          const j = job(jobId);
          if (!j || j.version !== version) return false;
          if (callback) db.writeCallback(jobId, callback);
          Object.assign(j, { final: totals, cancelPending: false, version: db.nextVersion() });
          return true;
        },
        async countReconcile(jobId, what, n = 1) {
          await db.enter('jobs.countReconcile');
          const j = job(jobId);
          if (j)
            Object.assign(j, {
              reconciled: { ...j.reconciled, [what]: j.reconciled[what] + n },
              version: db.nextVersion(),
            });
        },
        async listExportPending(limit) {
          await db.enter('jobs.listExportPending');
          return [...db.jobs.values()]
            .filter((j) => j.exportPending)
            .slice(0, limit)
            .map((j) => structuredClone(j));
        },
        async claimExport(j0, nowMs, untilMs) {
          await db.enter('jobs.claimExport');
          const j = job(j0.id);
          if (!j || j.version !== j0.version || (j.exportLeaseUntilMs ?? 0) > nowMs) return false;
          Object.assign(j, { exportLeaseUntilMs: untilMs, version: db.nextVersion() });
          return true;
        },
        async markExported(jobId) {
          await db.enter('jobs.markExported');
          const j = job(jobId);
          if (j) Object.assign(j, { exportPending: false, version: db.nextVersion() });
        },
        async listRecent({ owner, limit, after }) {
          await db.enter('jobs.listRecent');
          const all = [...db.jobs.values()]
            .filter((j) => owner === undefined || j.owner === owner)
            .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1));
          const start = after === undefined ? 0 : all.findIndex((j) => j.id === after) + 1;
          if (after !== undefined && start === 0) return { jobs: [] };
          const list = all.slice(start, start + limit).map((j) => structuredClone(j));
          return list.length === limit ? { jobs: list, next: list[list.length - 1]!.id } : { jobs: list };
        },
        async listUnsettled(limit, afterId) {
          await db.enter('jobs.listUnsettled');
          return [...db.jobs.values()]
            .filter((j) => !isTerminalJob(j.status) || j.cancelPending)
            .filter((j) => afterId === undefined || j.id > afterId)
            .sort((a, b) => (a.id < b.id ? -1 : 1))
            .slice(0, limit)
            .map((j) => structuredClone(j));
        },
        async readReconcileCursor() {
          await db.enter('jobs.readReconcileCursor');
          return structuredClone(db.reconcileCursor);
        },
        async writeReconcileCursor(cursor) {
          await db.enter('jobs.writeReconcileCursor');
          db.reconcileCursor = structuredClone(cursor);
        },
      },

      items: {
        async createMany(jobId, newItems) {
          await db.enter('items.createMany');
          // Create-if-absent, chunk by chunk, as Firestore's create does: an item there already stays.
          const map = db.items.get(jobId) ?? new Map<string, StoredItem>();
          for (const n of newItems) {
            if (map.has(n.id)) continue;
            const { plannedDueByMs, ...fields } = structuredClone(n);
            map.set(n.id, {
              ...fields,
              ...(plannedDueByMs !== undefined ? { dueByMs: plannedDueByMs } : {}),
              plannedMs: null,
              state: n.error ? 'failed' : 'pending',
              attempts: 0,
              lease: null,
              rounds: 0,
              finishedAt: n.error ? new Date(db.clock()) : null,
              finishedAtMicros: null,
              version: db.nextVersion(),
              counted: false,
            });
          }
          db.items.set(jobId, map);
        },
        async getWithJob(jobId, itemId) {
          await db.enter('items.getWithJob');
          const i = db.item(jobId, itemId);
          const j = job(jobId);
          return [i ? db.publicItem(jobId, i) : undefined, j ? structuredClone(j) : undefined];
        },
        async getMany(refs) {
          await db.enter('items.getMany');
          return refs.map((r) => {
            const i = db.item(r.jobId, r.itemId);
            return i ? db.publicItem(r.jobId, i) : undefined;
          });
        },
        async *streamOutcomes(jobId) {
          await db.enter('items.streamOutcomes');
          const all = [...(db.items.get(jobId)?.values() ?? [])].sort((a, b) => (a.id < b.id ? -1 : 1));
          for (const i of all) {
            yield outcomeOf(i);
          }
        },
        async listOutcomes(jobId, { afterId, limit }) {
          await db.enter('items.listOutcomes');
          return [...(db.items.get(jobId)?.values() ?? [])]
            .filter((i) => afterId === undefined || i.id > afterId)
            .sort((a, b) => (a.id < b.id ? -1 : 1))
            .slice(0, limit)
            .map(outcomeOf);
        },
        async list(jobId, { afterId, limit }) {
          await db.enter('items.list');
          return [...(db.items.get(jobId)?.values() ?? [])]
            .filter((i) => afterId === undefined || i.id > afterId)
            .sort((a, b) => (a.id < b.id ? -1 : 1))
            .slice(0, limit)
            .map((i) => db.publicItem(jobId, i));
        },
        async listFinished(jobId, cursor, limit, upToMicros) {
          await db.enter('items.listFinished');
          return [...(db.items.get(jobId)?.values() ?? [])]
            .filter((i): i is StoredItem & { finishedAtMicros: number } => i.finishedAtMicros !== null)
            .filter((i) => upToMicros === undefined || i.finishedAtMicros <= upToMicros)
            .filter(
              (i) =>
                !cursor ||
                i.finishedAtMicros > cursor.finishedAtMicros ||
                (i.finishedAtMicros === cursor.finishedAtMicros && i.id > cursor.itemId),
            )
            .sort((a, b) => a.finishedAtMicros - b.finishedAtMicros || (a.id < b.id ? -1 : 1))
            .slice(0, limit)
            .map((i) => ({ ...outcomeOf(i), finishedAtMicros: i.finishedAtMicros }));
        },
        async lease(ref, leaseMs, nowMs) {
          await db.enter('items.lease');
          const i = db.item(ref.jobId, ref.itemId);
          if (!i || i.version !== ref.version) return undefined;
          i.lease = { id: randomUUID(), untilMs: nowMs + leaseMs };
          i.attempts += 1;
          i.version = db.nextVersion();
          return { leaseId: i.lease.id, version: i.version };
        },
        async renew(ref, leaseMs, nowMs) {
          await db.enter('items.renew');
          const i = db.item(ref.jobId, ref.itemId);
          if (!i?.lease || i.version !== ref.version) return undefined;
          i.lease = { ...i.lease, untilMs: nowMs + leaseMs };
          i.version = db.nextVersion();
          return { version: i.version };
        },
        async release(ref, plannedMs, dueByMs) {
          await db.enter('items.release');
          const i = db.item(ref.jobId, ref.itemId);
          if (!i || i.version !== ref.version) return;
          i.lease = null;
          if (plannedMs !== undefined) i.plannedMs = plannedMs;
          if (dueByMs !== undefined) i.dueByMs = dueByMs;
          i.version = db.nextVersion();
        },
        async settle(ref: ItemRef, outcome: StoredOutcome) {
          await db.enter('items.settle');
          const i = db.item(ref.jobId, ref.itemId);
          if (!i || i.version !== ref.version) return false;
          db.applyOutcome(i, outcome);
          i.counted = true;
          db.completedWrites += 1;
          if (outcome.state === 'succeeded' && outcome.estimatedTokens !== undefined) {
            const ev = itemEvidence(outcome.estimatedTokens, outcome.usage?.promptTokens ?? 0);
            db.evidence.set(ref.jobId, addEvidence(db.evidence.get(ref.jobId) ?? NO_EVIDENCE, ev));
          }
          return true;
        },
        async retask(ref, next) {
          await db.enter('items.retask');
          const i = db.item(ref.jobId, ref.itemId);
          if (!i || i.version !== ref.version) return false;
          Object.assign(i, { lease: null, plannedMs: null, rounds: i.rounds + 1, version: db.nextVersion() });
          if (next) i.dueByMs = next.dueByMs;
          if (next?.attempts !== undefined) i.roundAttempts = next.attempts;
          if (next?.unreached) i.unreachedRounds = (i.unreachedRounds ?? 0) + 1;
          return true;
        },
        async setDue(jobId, due) {
          await db.enter('items.setDue');
          for (const d of due) {
            const i = db.item(jobId, d.itemId);
            if (!i || i.version !== d.version) continue;
            Object.assign(i, { dueByMs: d.dueByMs, version: db.nextVersion() });
          }
        },
        async listOverdue(nowMs, limit, after) {
          await db.enter('items.listOverdue');
          const pathOf = (jobId: string, itemId: string) => `jobs/${jobId}/items/${itemId}`;
          const key = (c: OverdueCursor) => [c.dueByMs, c.path] as const;
          const isAfter = (a: readonly [number, string], b: readonly [number, string]) =>
            a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
          const due: Array<{ cursor: OverdueCursor; item: ItemRecord & { jobId: string } }> = [];
          for (const [jobId, map] of db.items) {
            for (const i of map.values()) {
              if (i.state !== 'pending' || typeof i.dueByMs !== 'number' || i.dueByMs >= nowMs) continue;
              const cursor = { dueByMs: i.dueByMs, path: pathOf(jobId, i.id) };
              if (!after || isAfter(key(cursor), key(after)))
                due.push({ cursor, item: db.publicItem(jobId, i) });
            }
          }
          const page = due.sort((a, b) => (isAfter(key(a.cursor), key(b.cursor)) ? 1 : -1)).slice(0, limit);
          const last = page.length === limit ? page[page.length - 1] : undefined;
          return { items: page.map((p) => p.item), ...(last ? { next: last.cursor } : {}) };
        },
        async sweepPending(jobId, outcome) {
          await db.enter('items.sweepPending');
          // As Firestore's sweep does: read the pending items, then write each only if it is still
          // as read (a result or a lease landing in between keeps the item out of the sweep).
          const read = [...(db.items.get(jobId)?.values() ?? [])]
            .filter((i) => i.state === 'pending')
            .map((i) => ({ item: i, version: i.version }));
          await roundTrip();
          await db.beforeSweepWrites?.(jobId);
          const swept: string[] = [];
          for (const { item, version } of read) {
            if (item.version !== version) continue;
            db.applyOutcome(item, outcome);
            swept.push(item.id);
          }
          return swept;
        },
        async countStates(jobId, total) {
          await db.enter('items.countStates');
          // As Firestore's count is: several aggregation queries, each at its own instant (here the
          // sums first, then the counts per state, with `duringCount` in between).
          const sums = db.countedTotals(jobId, total, true);
          await db.duringCount?.(jobId);
          const states = db.countedTotals(jobId, total, true);
          return { ...states, usage: sums.usage, costUsd: sums.costUsd };
        },
        async listExpiredLeases(nowMs, limit) {
          await db.enter('items.listExpiredLeases');
          const out: Array<ItemRecord & { jobId: string }> = [];
          for (const [jobId, map] of db.items) {
            for (const i of map.values())
              if (i.state === 'pending' && i.lease && i.lease.untilMs < nowMs)
                out.push(db.publicItem(jobId, i));
          }
          return out.slice(0, limit);
        },
      },

      counters: {
        async totals(jobId, total, _shards, extra = []) {
          await db.enter('counters.totals');
          const docs = extra.map((id) => db.counterDocs.get(`${jobId}/${id}`) ?? {});
          return sumTotals([...db.countedParts(jobId), ...docs], total);
        },
        async evidence(jobId) {
          await db.enter('counters.evidence');
          return { ...(db.evidence.get(jobId) ?? NO_EVIDENCE) };
        },
        async put(jobId, docId, counts) {
          await db.enter('counters.put');
          db.counterDocs.set(`${jobId}/${docId}`, { ...counts });
        },
        async countQuota429(jobId, model, quotaId) {
          await db.enter('counters.countQuota429');
          const all = db.quota429s.get(jobId) ?? {};
          const byModel = all[model] ?? {};
          byModel[quotaId] = (byModel[quotaId] ?? 0) + 1;
          db.quota429s.set(jobId, { ...all, [model]: byModel });
        },
        async quota429s(jobId) {
          await db.enter('counters.quota429s');
          return structuredClone(db.quota429s.get(jobId) ?? {});
        },
      },

      ledger: {
        async read(model) {
          await db.enter('ledger.read');
          return structuredClone(db.ledgers.get(model) ?? { buckets: {} });
        },
        async reserve(model, tokens, quota, headroom, options = {}) {
          await db.enter('ledger.reserve');
          if (options.signal?.aborted) throw new ReserveAbandonedError(model);
          const j = options.jobId ? job(options.jobId) : undefined;
          if (options.jobId && (!j || isTerminalJob(j.status))) return [];
          const gate = options.spend
            ? spendGate(db.spendLedger, options.spend.limit, options.spend.costsUsd, db.clock())
            : undefined;
          const planned = reserveForJob(
            db.ledgers.get(model) ?? { buckets: {} },
            options.jobId ? (db.jobPlans.get(options.jobId) ?? {}) : undefined,
            tokens,
            db.clock(),
            quota,
            headroom,
            { ...options, ...(gate ? { gate } : {}) },
          );
          if (gate) {
            db.spendLedger = gate.ledger();
            options.spend?.report?.(gate.heldUntilSec());
          }
          db.ledgers.set(model, planned.ledger);
          if (options.jobId && planned.jobPlan) db.jobPlans.set(options.jobId, planned.jobPlan);
          if (options.jobId && options.evidence) db.foldEvidence(model, options.jobId, options.evidence);
          return planned.scheduleMs;
        },
        async releaseJob(model, jobId) {
          await db.enter('ledger.releaseJob');
          const plan = db.jobPlans.get(jobId);
          const ledger = db.ledgers.get(model);
          if (plan && ledger) db.ledgers.set(model, releaseJobPlan(ledger, plan, db.clock()));
          db.jobPlans.delete(jobId);
        },
        async lowerTokenRate(model) {
          await db.enter('ledger.lowerTokenRate');
          const ledger = db.ledgers.get(model) ?? { buckets: {} };
          const tokenCut = cutAfterTokens429(ledger.tokenCut, db.clock());
          db.ledgers.set(model, { ...ledger, tokenCut });
          return tokenCut;
        },
        async lowerRequestRate(model, quota) {
          await db.enter('ledger.lowerRequestRate');
          if (!quota.adaptive) return undefined;
          const ledger = db.ledgers.get(model) ?? { buckets: {} };
          const adaptive = decreaseAdaptiveRate(ledger.adaptive, quota.rpm, db.clock(), quota.adaptive);
          db.ledgers.set(model, { ...ledger, adaptive });
          return adaptive;
        },
        async evidence(model) {
          await db.enter('ledger.evidence');
          return { ...(db.modelEvidence.get(model) ?? NO_EVIDENCE) };
        },
        async dropJob(model, jobId, evidence) {
          await db.enter('ledger.dropJob');
          if (evidence && db.jobPlans.has(jobId)) db.foldEvidence(model, jobId, evidence);
          db.jobPlans.delete(jobId);
          db.foldedEvidence.delete(jobId);
        },
      },

      responseCache: {
        async get(id, nowMs) {
          await db.enter('responseCache.get');
          const entry = db.responseCache.get(id);
          return entry && entry.expireAtMs > nowMs ? structuredClone(entry) : undefined;
        },
        async put(id, entry) {
          await db.enter('responseCache.put');
          db.responseCache.set(id, structuredClone(entry));
        },
      },

      callbacks: {
        async get(jobId) {
          await db.enter('callbacks.get');
          const r = db.callbacks.get(jobId);
          return r ? { ...r } : undefined;
        },
        async listDue(nowMs, limit) {
          await db.enter('callbacks.listDue');
          return [...db.callbacks.values()]
            .filter((r) => r.state === 'pending' && r.dueMs !== null && r.dueMs <= nowMs)
            .sort((a, b) => a.dueMs! - b.dueMs!)
            .slice(0, limit)
            .map((r) => ({ ...r }));
        },
        async claim(record, untilMs) {
          await db.enter('callbacks.claim');
          const r = db.callbacks.get(record.jobId);
          if (!r || r.version !== record.version) return undefined;
          Object.assign(r, { dueMs: untilMs, attempts: r.attempts + 1, version: db.nextVersion() });
          return { ...r };
        },
        async settle(claimed, result) {
          await db.enter('callbacks.settle');
          const r = db.callbacks.get(claimed.jobId);
          if (!r || r.version !== claimed.version) return false;
          if (result.state === 'delivered')
            Object.assign(r, { state: 'delivered', dueMs: null, deliveredAtMs: result.atMs });
          else if (result.state === 'pending')
            Object.assign(r, { dueMs: result.dueMs, lastError: result.error });
          else Object.assign(r, { state: 'failed', dueMs: null, lastError: result.error });
          r.version = db.nextVersion();
          return true;
        },
      },

      pauses: {
        async set(model, untilMs, reason) {
          await db.enter('pauses.set');
          db.pauses.set(model, { untilMs, reason });
        },
        async list() {
          await db.enter('pauses.list');
          return [...db.pauses].map(([model, p]) => ({ model, ...p }));
        },
        async clear(model, untilMs) {
          await db.enter('pauses.clear');
          if (untilMs === undefined || db.pauses.get(model)?.untilMs === untilMs) db.pauses.delete(model);
        },
        async markResumed(model, untilMs, atMs) {
          await db.enter('pauses.markResumed');
          const p = db.pauses.get(model);
          if (!p || p.untilMs !== untilMs) return false;
          p.resumedAtMs = atMs;
          return true;
        },
      },
    };
  }
}

/** An item as a result line reads it: result fields only, a copy. */
function outcomeOf(i: StoredItem): ItemOutcomeRecord {
  const { id, index, key, keyField, state, response, responseObject, error, cached, steps } =
    structuredClone(i);
  return {
    id,
    index,
    key,
    ...(keyField ? { keyField } : {}),
    state,
    ...(response !== undefined ? { response } : {}),
    ...(responseObject ? { responseObject } : {}),
    ...(error ? { error } : {}),
    ...(cached ? { cached } : {}),
    ...(steps ? { steps } : {}),
  };
}
