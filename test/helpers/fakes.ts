/**
 * Small in-memory fakes of the narrow interfaces the handlers take besides the stores (those are in
 * `fake-stores.ts`): Gemini, Cloud Tasks (named tasks dedupe), media, the bucket, callbacks. And
 * `fakeWorld`, which wires them with the real lifecycle and planner, as `createDeps` does.
 */

import { dueWindowMs } from '../../functions/core/due.js';
import type { GenerateContentRequest, JobView, MediaRef } from '../../functions/core/jobs.js';
import type { Quotas } from '../../functions/core/quotas.js';
import type { TaskPayload } from '../../functions/core/tasks.js';
import { estimateContentTokens } from '../../functions/core/tokens.js';
import { createLifecycle, type LifecycleDeps } from '../../functions/lifecycle/lifecycle.js';
import { createPlanner } from '../../functions/lifecycle/plan.js';
import type { GeminiClient, GenerateResult } from '../../functions/platform/gemini/client.js';
import type { Logger } from '../../functions/platform/logger.js';
import type { MediaFetcher } from '../../functions/platform/media/index.js';
import type { ObjectStore, ReadOptions } from '../../functions/platform/object-store.js';
import { type ItemTask, itemTaskName, type TaskQueue } from '../../functions/platform/task-queue.js';
import { fakeBatchApiStores } from './fake-batch.js';
import { FakeDb, roundTrip } from './fake-stores.js';

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

  readonly countCalls: Array<{ model: string; request: GenerateContentRequest }> = [];
  /** Gemini's count of a request's contents; the estimator's by default. */
  count: (model: string, request: GenerateContentRequest) => Promise<number> = async (_m, r) =>
    estimateContentTokens(r);

  async countTokens(model: string, request: GenerateContentRequest): Promise<number> {
    this.countCalls.push({ model, request: structuredClone(request) });
    await roundTrip();
    return this.count(model, request);
  }

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
  /** Called as each item task is created, as a queue that delivers at once would (a delivery's view). */
  onCreate: ((jobId: string, task: ItemTask) => void) | undefined;

  async enqueueItems(model: string, jobId: string, tasks: ItemTask[]): Promise<void> {
    this.enqueueItemsCalls += 1;
    await roundTrip();
    const crash = this.crashOnEnqueueCall === this.enqueueItemsCalls;
    const upTo = crash ? Math.floor(tasks.length / 2) : tasks.length;
    for (const t of tasks.slice(0, upTo)) {
      const name = itemTaskName(jobId, t);
      if (this.itemTasks.has(name)) continue;
      this.itemTasks.set(name, { model, jobId, ...t });
      this.onCreate?.(jobId, t);
    }
    if (crash) throw new Error('14 UNAVAILABLE: connection reset');
  }

  async handOver(queueName: string, jobId: string, task: ItemTask): Promise<void> {
    await roundTrip();
    const name = itemTaskName(jobId, task);
    if (!this.itemTasks.has(name)) this.itemTasks.set(name, { model: queueName, jobId, ...task });
  }

  async enqueueControl(payload: TaskPayload, name: string, scheduleMs?: number): Promise<void> {
    await roundTrip();
    if (this.controlTasks.has(name)) return;
    this.controlTasks.set(name, payload);
    if (scheduleMs !== undefined) this.controlSchedule.set(name, scheduleMs);
  }

  readonly deleted: string[] = [];
  async deleteItems(_model: string, jobId: string, itemIds: string[]): Promise<number> {
    await roundTrip();
    let n = 0;
    for (const itemId of itemIds) {
      const name = itemTaskName(jobId, { itemId });
      if (this.itemTasks.delete(name)) n++;
      this.deleted.push(name);
    }
    return n;
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

/** The bucket: JSON objects by name. */
export class FakeObjectStore implements ObjectStore {
  readonly objects = new Map<string, string>();
  /** Uploads that fail before one succeeds (a connection reset, as a busy bucket may answer). */
  failPuts = 0;
  async putJson(name: string, value: unknown): Promise<void> {
    await roundTrip();
    if (this.failPuts > 0) {
      this.failPuts--;
      throw new Error('socket hang up');
    }
    this.objects.set(name, JSON.stringify(value));
  }
  async getJson(name: string): Promise<unknown> {
    await roundTrip();
    const text = this.objects.get(name);
    if (text === undefined) throw Object.assign(new Error(`No such object: ${name}`), { code: 404 });
    return JSON.parse(text);
  }
  async *read(name: string, options: ReadOptions = {}): AsyncIterable<Uint8Array> {
    await roundTrip();
    const text = this.objects.get(name);
    if (text === undefined) throw Object.assign(new Error(`No such object: ${name}`), { code: 404 });
    const bytes = Buffer.from(text);
    yield bytes.subarray(options.start ?? 0, options.end === undefined ? undefined : options.end + 1);
  }
  async writeStream(
    name: string,
    chunks: Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
  ): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of chunks) parts.push(Buffer.from(c));
    await roundTrip();
    this.objects.set(name, Buffer.concat(parts).toString('utf8'));
  }
  async delete(name: string): Promise<void> {
    await roundTrip();
    this.objects.delete(name);
  }
}

/** The fakes wired with the real lifecycle and planner. */
export function fakeWorld(options: {
  quotas: Quotas;
  logger: Logger;
  clock?: () => number;
  stallMs?: number;
  notify?: LifecycleDeps['notify'];
  /** With the Batch API path's stores (./fake-batch.ts). */
  batch?: boolean;
}) {
  const clock = options.clock ?? Date.now;
  const db = new FakeDb(clock);
  const tasks = new FakeTaskQueue();
  const objects = new FakeObjectStore();
  const recorder = fakeNotify();
  const { sent } = recorder;
  const notify = options.notify ?? recorder.notify;
  const stallMs = options.stallMs ?? 60_000;
  const batch = options.batch ? fakeBatchApiStores(db, clock) : undefined;
  const lifecycle = createLifecycle({
    ...(batch ? { batch } : {}),
    stores: db.stores,
    tasks,
    objects,
    logger: options.logger,
    notify,
    stallMs,
    // The planner's due window: its default dispatch deadline (600 s) and the queue's retries.
    dueWindowMs: dueWindowMs(options.quotas.queue, 600),
    now: clock,
    sleep: async () => undefined,
  });
  const gemini = new FakeGemini();
  const planner = createPlanner({
    stores: db.stores,
    tasks,
    counter: gemini,
    quotas: options.quotas,
    logger: options.logger,
    stallMs,
    now: clock,
  });
  return { db, tasks, objects, sent, notify, lifecycle, planner, stallMs, gemini, batch };
}
