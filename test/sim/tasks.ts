/**
 * A simulated Cloud Tasks, behind the product's `TaskQueue` interface, with the behaviours the
 * product must survive (the public docs): at-least-once delivery (duplicates), no ordering
 * (dispatch jitter), `scheduleTime` honoured, named tasks deduped for an hour after they end, any
 * non-2xx retried with exponential backoff (`Retry-After` honoured on 429/503) up to `maxAttempts`,
 * then the task is DELETED (no dead letter); 429/503 answered by the front before the handler runs
 * (Cloud Run at max instances, an IAM slip), counted as attempts; a dispatch deadline after which
 * the queue abandons a delivery and retries while the abandoned one may still run; paused queues.
 */
import { CONTROL_QUEUE_ID, queueIdForModel } from '../../functions/core/quotas.js';
import type { TaskCut } from '../../functions/core/task-groups.js';
import type { TaskDelivery, TaskPayload } from '../../functions/core/tasks.js';
import { itemTaskSpecs } from '../../functions/platform/item-tasks.js';
import {
  type ItemTask,
  itemTaskId,
  itemTaskName,
  type TaskQueue,
} from '../../functions/platform/task-queue.js';
import type { WorkerReply } from '../../functions/worker/handler.js';
import type { SimClock } from './clock.js';
import type { Rng } from './rng.js';
import type { Trace } from './trace.js';

export interface QueueKnobs {
  maxAttempts: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  maxDoublings: number;
  dispatchDeadlineMs: number;
  /** Share of dispatches answered 429/503 by the front, before the handler. */
  frontFailShare: number;
  /** Windows in which every dispatch to the item queues fails before the handler (a worker outage). */
  outages: Array<{ fromMs: number; toMs: number }>;
  /** Share of attempts delivered twice. */
  duplicateShare: number;
  /** Dispatch happens up to this late after the schedule time (so tasks due together reorder). */
  jitterMs: number;
}

interface SimTask {
  name: string;
  queue: string;
  payload: TaskPayload;
  retryCount: number;
  executions: number;
  state: 'queued' | 'running' | 'ended';
  endedAtMs?: number;
  /** The attempt the queue waits on; a late answer to an abandoned attempt is ignored. */
  attempt: number;
}

/** Cloud Tasks refuses a name used by a task that ended within about an hour. */
const NAME_REUSE_MS = 3_600_000;

export class SimTaskQueue implements TaskQueue {
  private readonly tasks = new Map<string, SimTask>();
  private readonly paused = new Set<string>();
  /** Tasks deleted after their last attempt failed, by name. */
  readonly dropped: string[] = [];
  /** Deliveries that reached the handler (duplicates included). */
  deliveries = 0;

  constructor(
    private readonly clock: SimClock,
    private readonly rng: Rng,
    private readonly trace: Trace,
    private readonly knobs: QueueKnobs,
    private readonly deliver: (delivery: TaskDelivery) => Promise<WorkerReply>,
  ) {}

  /** Items with a task not yet ended (`jobId/itemId`), and whether its queue is paused. */
  liveItems(): Map<string, { paused: boolean }> {
    const live = new Map<string, { paused: boolean }>();
    for (const t of this.tasks.values()) {
      if (t.state === 'ended') continue;
      const paused = { paused: this.paused.has(t.queue) };
      if (t.payload.kind === 'item') live.set(`${t.payload.jobId}/${t.payload.itemId}`, paused);
      if (t.payload.kind === 'items')
        for (const i of t.payload.items) live.set(`${t.payload.jobId}/${i.itemId}`, paused);
    }
    return live;
  }

  async enqueueItems(model: string, jobId: string, items: ItemTask[], cut?: TaskCut): Promise<void> {
    // Grouped as the real queue groups them (several items a task when the cut says so).
    for (const t of itemTaskSpecs(jobId, items, cut, itemTaskName))
      this.create(queueIdForModel(model), t.name, t.payload, t.scheduleMs);
  }

  async handOver(queueName: string, jobId: string, task: ItemTask): Promise<void> {
    this.createItem(queueName, jobId, task);
  }

  async enqueueControl(payload: TaskPayload, name: string, scheduleMs?: number): Promise<void> {
    this.create(CONTROL_QUEUE_ID, name, payload, scheduleMs);
  }

  async deleteItems(model: string, jobId: string, itemIds: string[]): Promise<number> {
    let deleted = 0;
    for (const itemId of itemIds) {
      const task = this.tasks.get(`${queueIdForModel(model)}/${itemTaskId(jobId, itemId)}`);
      if (!task || task.state === 'ended') continue;
      this.end(task, 'deleted');
      deleted++;
    }
    return deleted;
  }

  async pauseModel(model: string): Promise<void> {
    this.paused.add(queueIdForModel(model));
    this.trace.add(`queue ${queueIdForModel(model)} paused`);
  }

  async resumeModel(model: string): Promise<void> {
    this.paused.delete(queueIdForModel(model));
    this.trace.add(`queue ${queueIdForModel(model)} resumed`);
  }

  async ensureQueues(): Promise<void> {}

  private createItem(queue: string, jobId: string, t: ItemTask): void {
    const payload: TaskPayload = {
      kind: 'item',
      jobId,
      itemId: t.itemId,
      ...(t.plannedMs === undefined ? {} : { plannedMs: t.plannedMs }),
    };
    this.create(queue, itemTaskName(jobId, t), payload, t.scheduleMs ?? t.plannedMs);
  }

  private create(queue: string, id: string, payload: TaskPayload, scheduleMs?: number): void {
    const name = `${queue}/${id}`;
    const old = this.tasks.get(name);
    if (old && (old.state !== 'ended' || this.clock.now() - old.endedAtMs! < NAME_REUSE_MS)) return;
    const task: SimTask = { name, queue, payload, retryCount: 0, executions: 0, state: 'queued', attempt: 0 };
    this.tasks.set(name, task);
    this.trace.add(`task + ${name} ${describe(payload)}${scheduleMs ? ` at ${this.rel(scheduleMs)}` : ''}`);
    this.schedule(task, scheduleMs ?? this.clock.now());
  }

  private schedule(task: SimTask, dueMs: number): void {
    const attempt = task.attempt;
    this.clock.at(dueMs + this.rng.int(0, this.knobs.jitterMs), () => this.dispatch(task, attempt));
  }

  private dispatch(task: SimTask, attempt: number): void {
    if (task.state !== 'queued' || task.attempt !== attempt) return;
    if (this.paused.has(task.queue)) {
      this.schedule(task, this.clock.now() + 5000);
      return;
    }
    task.state = 'running';
    if (this.frontFails(task)) {
      const status = this.rng.pick([429, 503]);
      this.trace.add(
        `front ${status} ${task.name} (attempt ${task.retryCount + 1}, never reached the worker)`,
      );
      this.failed(task, status, undefined);
      return;
    }
    this.run(task, false);
    if (this.rng.chance(this.knobs.duplicateShare))
      this.clock.after(this.rng.int(0, 2000), () => this.run(task, true));
    this.clock.after(this.knobs.dispatchDeadlineMs, () => {
      if (task.state !== 'running' || task.attempt !== attempt) return;
      this.trace.add(`deadline ${task.name}: the queue abandons attempt ${task.retryCount + 1}`);
      this.failed(task, 504, undefined);
    });
  }

  private frontFails(task: SimTask): boolean {
    const now = this.clock.now();
    const outage =
      task.queue !== CONTROL_QUEUE_ID && this.knobs.outages.some((o) => now >= o.fromMs && now < o.toMs);
    return outage || this.rng.chance(this.knobs.frontFailShare);
  }

  /** One delivery to the worker; a duplicate's answer goes nowhere, as the queue waits on one. */
  private run(task: SimTask, duplicate: boolean): void {
    const attempt = task.attempt;
    const delivery: TaskDelivery = {
      queueName: task.queue,
      taskName: task.name,
      retryCount: task.retryCount,
      executionCount: task.executions,
      payload: task.payload,
    };
    this.deliveries++;
    this.trace.add(`deliver ${task.name} try ${task.retryCount + 1}${duplicate ? ' (duplicate)' : ''}`);
    void this.deliver(delivery).then((reply) => {
      this.trace.add(
        `reply ${reply.status} ${reply.body.outcome} ${task.name}${duplicate ? ' (duplicate)' : ''}`,
      );
      if (duplicate || task.state !== 'running' || task.attempt !== attempt) return;
      task.executions++;
      if (reply.status >= 200 && reply.status < 300) this.end(task, 'done');
      else this.failed(task, reply.status, reply.retryAfterSeconds);
    });
  }

  private failed(task: SimTask, status: number, retryAfterSeconds: number | undefined): void {
    task.retryCount++;
    task.attempt++;
    if (task.retryCount >= this.knobs.maxAttempts) {
      this.dropped.push(task.name);
      this.end(task, `DROPPED after ${task.retryCount} attempts`);
      return;
    }
    task.state = 'queued';
    const k = this.knobs;
    const backoff = Math.min(
      k.maxBackoffMs,
      k.minBackoffMs * 2 ** Math.min(task.retryCount - 1, k.maxDoublings),
    );
    const honoured = (status === 429 || status === 503) && retryAfterSeconds ? retryAfterSeconds * 1000 : 0;
    this.schedule(task, this.clock.now() + Math.max(backoff, honoured));
  }

  private end(task: SimTask, why: string): void {
    task.state = 'ended';
    task.attempt++;
    task.endedAtMs = this.clock.now();
    if (why !== 'done') this.trace.add(`task - ${task.name} ${why}`);
  }

  private rel(ms: number): string {
    return `+${((ms - this.clock.now()) / 1000).toFixed(1)}s`;
  }
}

function describe(p: TaskPayload): string {
  if (p.kind === 'item') return `item ${p.jobId}/${Number(p.itemId)}`;
  if (p.kind === 'items') return `items ${p.jobId}/${p.items.map((i) => Number(i.itemId)).join(',')}`;
  if (p.kind === 'enqueue') return `enqueue ${p.jobId} from ${p.from}`;
  return `finish ${p.jobId} round ${p.round}`;
}
