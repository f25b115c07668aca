/**
 * Small in-memory fakes of the narrow interfaces the handlers take. They keep the contracts the
 * interfaces document (leases, exactly-once outcomes, a job turned terminal once, task names that
 * dedupe) so handler tests exercise the same decisions as with Firestore and Cloud Tasks.
 */
import { randomUUID } from 'node:crypto';
import type {
  GenerateContentRequest,
  ItemError,
  JobCounts,
  JobSpec,
  MediaRef,
  NewItem,
  Usage,
} from '../../../functions/core/jobs.js';
import { isTerminalJob, pendingOf } from '../../../functions/core/jobs.js';
import type { ModelQuota } from '../../../functions/core/quotas.js';
import {
  type DispatchLedger,
  type JobPlan,
  releaseJobPlan,
  reserveForJob,
} from '../../../functions/core/rate.js';
import { CANCELLED_ERROR } from '../../../functions/core/results.js';
import type { GeminiClient, GenerateResult } from '../../../functions/platform/gemini.js';
import type {
  ClaimResult,
  FinishCursor,
  ItemOutcome,
  ItemRecord,
  JobRecord,
  JobStore,
  JobView,
} from '../../../functions/platform/job-store.js';
import { toJobView } from '../../../functions/platform/job-store.js';
import type { MediaFetcher } from '../../../functions/platform/media.js';
import {
  type ItemTask,
  itemTaskName,
  type TaskPayload,
  type TaskQueue,
} from '../../../functions/platform/task-queue.js';

/** Lets other pending promises run, as a network round trip would. */
const roundTrip = () => new Promise<void>((resolve) => setImmediate(resolve));

/** An outcome for test setup; usage and cost are optional. */
export type SettledOutcome =
  | { state: 'succeeded'; response: unknown; usage?: Usage }
  | { state: 'failed'; error: ItemError; usage?: Usage };

type StoredItem = ItemRecord & { lease: { id: string; untilMs: number } | null };

/** Methods of the fake store that tests can make fail once. */
export type StoreMethod = keyof JobStore;

export class FakeJobStore implements JobStore {
  readonly jobs = new Map<string, JobRecord>();
  readonly items = new Map<string, Map<string, StoredItem>>();
  readonly ledgers = new Map<string, DispatchLedger>();
  /** Job id → its reservations on its model's ledger. */
  readonly jobPlans = new Map<string, JobPlan>();
  readonly pauses = new Map<string, { untilMs: number; reason: string }>();
  /** How many times each method was called, and how many outcome writes and finishes took effect. */
  readonly calls: Partial<Record<StoreMethod, number>> = {};
  completedWrites = 0;
  finishedJobs = 0;
  private failures: Partial<Record<StoreMethod, Error[]>> = {};
  private commitMicros = 1_700_000_000_000_000;

  constructor(private readonly clock: () => number = Date.now) {}

  /** The next call of `method` throws `error` (after its round trip). */
  failOnce(method: StoreMethod, error = new Error(`${method}: transient store failure`)): void {
    this.failures[method] = [...(this.failures[method] ?? []), error];
  }

  private async enter(method: StoreMethod): Promise<void> {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
    await roundTrip();
    const error = this.failures[method]?.shift();
    if (error) throw error;
  }

  private nextMicros(): number {
    this.commitMicros += 1;
    return this.commitMicros;
  }

  item(jobId: string, itemId: string): StoredItem | undefined {
    return this.items.get(jobId)?.get(itemId);
  }

  private aggregate(jobId: string, total: number): { counts: JobCounts; usage: Usage; costUsd: number } {
    const all = [...(this.items.get(jobId)?.values() ?? [])];
    const count = (state: string) => all.filter((i) => i.state === state).length;
    const succeeded = count('succeeded');
    const failed = count('failed');
    const cancelled = count('cancelled');
    return {
      counts: {
        total,
        succeeded,
        failed,
        cancelled,
        pending: pendingOf({ total, succeeded, failed, cancelled }),
      },
      usage: {
        promptTokens: all.reduce((s, i) => s + (i.usage?.promptTokens ?? 0), 0),
        outputTokens: all.reduce((s, i) => s + (i.usage?.outputTokens ?? 0), 0),
      },
      costUsd: Math.round(all.reduce((s, i) => s + (i.costUsd ?? 0), 0) * 1e9) / 1e9,
    };
  }

  private view(job: JobRecord): JobView {
    return toJobView(job, job.final ?? this.aggregate(job.id, job.total));
  }

  private finishItem(item: StoredItem): void {
    item.finishedAt = new Date(this.clock());
    item.finishedAtMicros = this.nextMicros();
    item.lease = null;
  }

  async createJob(spec: JobSpec, newItems: NewItem[]): Promise<void> {
    await this.enter('createJob');
    const items = new Map<string, StoredItem>();
    for (const n of newItems) {
      items.set(n.id, {
        id: n.id,
        index: n.index,
        key: n.key,
        request: structuredClone(n.request),
        ...(n.media ? { media: structuredClone(n.media) } : {}),
        estimatedTokens: n.estimatedTokens,
        plannedMs: null,
        state: 'pending',
        attempts: 0,
        finishedAt: null,
        finishedAtMicros: null,
        lease: null,
      });
    }
    this.items.set(spec.id, items);
    this.jobs.set(spec.id, {
      ...spec,
      counterShards: spec.counterShards ?? 16,
      status: 'queued',
      createdAt: new Date(this.clock()),
      startedAt: null,
      finishedAt: null,
      enqueuedThrough: 0,
      notice: null,
      final: null,
    });
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    await this.enter('getJob');
    const job = this.jobs.get(jobId);
    return job ? structuredClone(job) : undefined;
  }

  async viewJob(jobId: string): Promise<JobView | undefined> {
    await this.enter('viewJob');
    const job = this.jobs.get(jobId);
    return job ? this.view(job) : undefined;
  }

  async listItems(jobId: string, options: { afterId?: string; limit: number }): Promise<ItemRecord[]> {
    await this.enter('listItems');
    return [...(this.items.get(jobId)?.values() ?? [])]
      .filter((i) => options.afterId === undefined || i.id > options.afterId)
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .slice(0, options.limit)
      .map(publicItem);
  }

  async listFinished(jobId: string, cursor: FinishCursor | undefined, limit: number): Promise<ItemRecord[]> {
    await this.enter('listFinished');
    return [...(this.items.get(jobId)?.values() ?? [])]
      .filter((i): i is StoredItem & { finishedAtMicros: number } => i.finishedAtMicros !== null)
      .filter(
        (i) =>
          !cursor ||
          i.finishedAtMicros > cursor.finishedAtMicros ||
          (i.finishedAtMicros === cursor.finishedAtMicros && i.id > cursor.itemId),
      )
      .sort((a, b) => a.finishedAtMicros - b.finishedAtMicros || (a.id < b.id ? -1 : 1))
      .slice(0, limit)
      .map(publicItem);
  }

  async claimItem(jobId: string, itemId: string, leaseMs: number): Promise<ClaimResult> {
    await this.enter('claimItem');
    const job = this.jobs.get(jobId);
    const item = this.item(jobId, itemId);
    if (!job || !item) return { outcome: 'missing' };
    if (item.state !== 'pending') return { outcome: 'done', state: item.state };
    if (job.status === 'cancelled') {
      item.state = 'cancelled';
      item.error = CANCELLED_ERROR;
      this.finishItem(item);
      return { outcome: 'cancelled' };
    }
    const now = this.clock();
    if (item.lease && item.lease.untilMs > now) {
      return { outcome: 'leased', retryAfterMs: item.lease.untilMs - now };
    }
    const leaseId = randomUUID();
    item.lease = { id: leaseId, untilMs: now + leaseMs };
    item.attempts += 1;
    const before = structuredClone(job);
    if (job.status === 'queued') {
      job.status = 'running';
      job.startedAt = new Date(now);
    }
    return { outcome: 'claimed', item: publicItem(item), job: before, leaseId };
  }

  async releaseItem(jobId: string, itemId: string, leaseId: string, plannedMs?: number): Promise<void> {
    await this.enter('releaseItem');
    const item = this.item(jobId, itemId);
    if (item?.state === 'pending' && item.lease?.id === leaseId) {
      item.lease = null;
      if (plannedMs !== undefined) item.plannedMs = plannedMs;
    }
  }

  async completeItem(jobId: string, itemId: string, leaseId: string, outcome: ItemOutcome): Promise<boolean> {
    await this.enter('completeItem');
    const item = this.item(jobId, itemId);
    if (item?.state !== 'pending' || item.lease?.id !== leaseId) return false;
    item.state = outcome.state;
    if (outcome.state === 'succeeded') item.response = structuredClone(outcome.response);
    else item.error = outcome.error;
    if (outcome.usage) item.usage = outcome.usage;
    if (outcome.costUsd !== undefined) item.costUsd = outcome.costUsd;
    this.finishItem(item);
    this.completedWrites += 1;
    return true;
  }

  async hasPending(jobId: string): Promise<boolean> {
    await this.enter('hasPending');
    return [...(this.items.get(jobId)?.values() ?? [])].some((i) => i.state === 'pending');
  }

  async finishJob(jobId: string, status: JobRecord['status']): Promise<JobView | undefined> {
    await this.enter('finishJob');
    const job = this.jobs.get(jobId);
    if (!job || isTerminalJob(job.status)) return undefined;
    job.status = status;
    job.finishedAt = new Date(this.clock());
    job.startedAt ??= job.finishedAt;
    job.notice = null;
    job.final = this.aggregate(jobId, job.total);
    this.jobPlans.delete(jobId);
    this.finishedJobs += 1;
    return this.view(job);
  }

  async cancelJob(jobId: string): Promise<{ view: JobView; changed: boolean } | undefined> {
    await this.enter('cancelJob');
    const job = this.jobs.get(jobId);
    if (!job) return undefined;
    if (isTerminalJob(job.status)) return { view: this.view(job), changed: false };
    job.status = 'cancelled';
    job.finishedAt = new Date(this.clock());
    job.notice = null;
    for (const item of this.items.get(jobId)?.values() ?? []) {
      if (item.state !== 'pending') continue;
      item.state = 'cancelled';
      item.error = CANCELLED_ERROR;
      this.finishItem(item);
    }
    job.final = this.aggregate(jobId, job.total);
    const plan = this.jobPlans.get(jobId);
    const ledger = this.ledgers.get(job.model);
    if (plan && ledger) this.ledgers.set(job.model, releaseJobPlan(ledger, plan, this.clock()));
    this.jobPlans.delete(jobId);
    return { view: this.view(job), changed: true };
  }

  async setEnqueued(jobId: string, through: number): Promise<void> {
    await this.enter('setEnqueued');
    const job = this.jobs.get(jobId);
    if (job) job.enqueuedThrough = through;
  }

  async setNotice(jobId: string, notice: string | null): Promise<void> {
    await this.enter('setNotice');
    const job = this.jobs.get(jobId);
    if (job) job.notice = notice;
  }

  async readLedger(model: string): Promise<DispatchLedger> {
    await this.enter('readLedger');
    return structuredClone(this.ledgers.get(model) ?? { buckets: {} });
  }

  async reserveDispatches(
    model: string,
    tokens: number[],
    quota: ModelQuota,
    headroom: number,
    options: { jobId?: string; release?: { atMs: number; tokens: number }; untilMs?: number } = {},
  ): Promise<number[]> {
    await this.enter('reserveDispatches');
    const job = options.jobId ? this.jobs.get(options.jobId) : undefined;
    if (options.jobId && (!job || isTerminalJob(job.status))) return [];
    const planned = reserveForJob(
      this.ledgers.get(model) ?? { buckets: {} },
      options.jobId ? (this.jobPlans.get(options.jobId) ?? {}) : undefined,
      tokens,
      this.clock(),
      quota,
      headroom,
      options,
    );
    this.ledgers.set(model, planned.ledger);
    if (options.jobId && planned.jobPlan) this.jobPlans.set(options.jobId, planned.jobPlan);
    return planned.scheduleMs;
  }

  async setQuotaPause(model: string, untilMs: number, reason: string): Promise<void> {
    await this.enter('setQuotaPause');
    this.pauses.set(model, { untilMs, reason });
  }

  async listQuotaPauses(): Promise<Array<{ model: string; untilMs: number; reason: string }>> {
    await this.enter('listQuotaPauses');
    return [...this.pauses].map(([model, p]) => ({ model, ...p }));
  }

  async clearQuotaPause(model: string): Promise<void> {
    await this.enter('clearQuotaPause');
    this.pauses.delete(model);
  }

  /** Test setup: ends an item as if a worker had, without going through a lease. */
  settle(jobId: string, itemId: string, outcome: SettledOutcome): void {
    const item = this.item(jobId, itemId);
    if (!item) throw new Error(`no item ${jobId}/${itemId}`);
    item.state = outcome.state;
    if (outcome.state === 'succeeded') item.response = outcome.response;
    else item.error = outcome.error;
    if (outcome.usage) item.usage = outcome.usage;
    this.finishItem(item);
  }

  /** Test setup: holds an item's lease, as a delivery in flight would. */
  lease(jobId: string, itemId: string, untilMs: number): void {
    const item = this.item(jobId, itemId);
    if (!item) throw new Error(`no item ${jobId}/${itemId}`);
    item.lease = { id: 'someone-else', untilMs };
  }
}

function publicItem(item: StoredItem): ItemRecord {
  const { lease: _lease, ...rest } = item;
  return structuredClone(rest);
}

/** A Gemini stand-in: answers from `respond`, records every call. */
export class FakeGemini implements GeminiClient {
  readonly calls: Array<{ model: string; request: GenerateContentRequest }> = [];
  respond: (model: string, request: GenerateContentRequest) => Promise<GenerateResult> = async () => ({
    response: {
      candidates: [{ content: { role: 'model', parts: [{ text: 'an answer' }] }, finishReason: 'STOP' }],
      usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 5, totalTokenCount: 17 },
    },
    usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 5 },
  });

  async generate(model: string, request: GenerateContentRequest): Promise<GenerateResult> {
    this.calls.push({ model, request: structuredClone(request) });
    await roundTrip();
    return this.respond(model, request);
  }

  /** Every later call throws `error`. */
  failWith(error: Error): void {
    this.respond = async () => {
      throw error;
    };
  }
}

/** A Cloud Tasks stand-in: named tasks dedupe, as upstream does for about an hour. */
export class FakeTaskQueue implements TaskQueue {
  readonly itemTasks = new Map<string, { model: string; jobId: string } & ItemTask>();
  readonly controlTasks = new Map<string, TaskPayload>();
  /** Control task name → its schedule time, when it has one. */
  readonly controlSchedule = new Map<string, number>();
  readonly paused = new Set<string>();
  readonly pauseCalls: string[] = [];
  enqueueItemsCalls = 0;
  /** When set, the enqueueItems call with this 1-based number creates half its tasks, then throws. */
  crashOnEnqueueCall: number | undefined;

  async enqueueItems(model: string, jobId: string, tasks: ItemTask[]): Promise<void> {
    this.enqueueItemsCalls += 1;
    await roundTrip();
    const crash = this.crashOnEnqueueCall === this.enqueueItemsCalls;
    const upTo = crash ? Math.floor(tasks.length / 2) : tasks.length;
    for (const t of tasks.slice(0, upTo)) {
      const name = itemTaskName(jobId, t);
      if (!this.itemTasks.has(name)) this.itemTasks.set(name, { model, jobId, ...t });
    }
    if (crash) throw new Error('14 UNAVAILABLE: connection reset');
  }

  async enqueueControl(payload: TaskPayload, name: string, scheduleMs?: number): Promise<void> {
    await roundTrip();
    if (this.controlTasks.has(name)) return;
    this.controlTasks.set(name, payload);
    if (scheduleMs !== undefined) this.controlSchedule.set(name, scheduleMs);
  }

  async pauseModel(model: string): Promise<void> {
    await roundTrip();
    this.pauseCalls.push(model);
    this.paused.add(model);
  }

  async resumeModel(model: string): Promise<void> {
    await roundTrip();
    this.paused.delete(model);
  }

  async ensureQueues(): Promise<void> {
    await roundTrip();
  }
}

/** A media fetcher stand-in: appends a marker part per ref, or throws `error`. */
export class FakeMediaFetcher implements MediaFetcher {
  readonly calls: MediaRef[][] = [];
  error: Error | undefined;

  async attach(request: GenerateContentRequest, media: MediaRef[]): Promise<GenerateContentRequest> {
    this.calls.push(media);
    await roundTrip();
    if (this.error) throw this.error;
    const parts = media.map((m) => ({ inlineData: { mimeType: m.mimeType ?? 'image/png', data: 'AAAA' } }));
    const contents = request.contents.map((c) => ({ ...c, parts: [...c.parts] }));
    contents.at(-1)?.parts.push(...parts);
    return { ...request, contents };
  }
}

/** Records callback notifications. */
export function fakeNotify() {
  const sent: Array<{ url: string; job: JobView }> = [];
  const notify = async (url: string, job: JobView) => {
    await roundTrip();
    sent.push({ url, job });
  };
  return { sent, notify };
}
