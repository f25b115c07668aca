import { parseRetryAfterMs, type RetryPolicy, retriesExhausted, retryDelayMs } from './backoff.js';
import { CreateAdmission } from './create-admission.js';
import {
  type AttemptMetadata,
  type AttemptOutcome,
  buildDispatchHeaders,
  type DispatchAgents,
  type HttpTarget,
  rpcCodeForHttpStatus,
  sendAttempt,
} from './dispatch.js';
import { EnforcedRate } from './enforced-rate.js';
import { MinHeap } from './heap.js';
import { DispatchHistory, type HistoryLimits, type RetainedCounts } from './history.js';
import { type Behaviours, deriveBurst } from './profile.js';
import { defaultBurstSize } from './resources.js';
import { TokenBucket } from './token-bucket.js';

/** A queue's rate limits, resolved (defaults applied, burst derived or explicit). */
export interface RateLimits {
  maxDispatchesPerSecond: number;
  maxBurstSize: number;
  maxConcurrentDispatches: number;
}

/** One attempt as Task.firstAttempt / lastAttempt report it. */
export interface AttemptRecord {
  scheduleTimeMs?: number;
  dispatchTimeMs: number;
  responseTimeMs?: number;
  responseStatus?: { code: number; message: string };
}

/** A task held by a queue. Times are epoch milliseconds. */
export interface TaskRecord {
  name: string;
  id: string;
  target: HttpTarget;
  scheduleTimeMs: number;
  createTimeMs: number;
  dispatchDeadlineMs: number;
  dispatchCount: number;
  responseCount: number;
  /** Non-5xx responses, which is what X-CloudTasks-TaskExecutionCount counts. */
  executionCount: number;
  firstAttempt?: AttemptRecord;
  lastAttempt?: AttemptRecord;
  previousResponse?: number;
  retryReason?: string;
  /** Attempts currently out (more than one only through RunTask). */
  inFlight: number;
  /** Bumped whenever the task leaves the pending heap, so stale heap entries are skipped. */
  version: number;
}

/** Emulator-wide settings a queue reads live, so `configure()` takes effect at once. */
export interface DispatchSettings {
  /** Share of attempts delivered a second time (at-least-once fault), 0…1. */
  duplicateShare: number;
  /** Seeded PRNG behind the fault knobs and the strict behaviours' randomness. */
  random: () => number;
  /** The upstream behaviours in force (ideal or strict, with overrides). */
  behaviours: Behaviours;
  /** How much history the stats keep. */
  history: HistoryLimits;
}

/** What a queue needs from the emulator around it. */
export interface QueueEnvironment {
  agents: DispatchAgents;
  signal: AbortSignal;
  settings: DispatchSettings;
  /** Called when a task leaves the queue for good, so its name stays reserved (dedup). */
  onTaskGone(task: TaskRecord, nowMs: number): void;
}

/** Per-queue numbers for tests and benchmarks. */
export interface QueueStats {
  name: string;
  state: 'RUNNING' | 'PAUSED';
  /** Tasks still in the queue (pending or in flight). */
  tasks: number;
  inFlight: number;
  /** Attempts sent (first tries and retries; duplicates not included). */
  dispatches: number;
  /** Extra deliveries sent by the duplicate knob. */
  duplicates: number;
  /** Tasks finished with a 2xx. */
  succeeded: number;
  /** Attempts that ended in a non-2xx, a deadline or a connection error. */
  failedAttempts: number;
  /** Tasks deleted because their retries ran out. */
  exhausted: number;
  /** Most attempts outstanding at once. */
  peakConcurrency: number;
  /** Epoch ms of the most recent attempts sent (up to `history.dispatches`), in order. */
  dispatchTimes: number[];
  /** Attempts per whole second since the first time in `dispatchTimes`. */
  perSecond: number[];
  /**
   * Attempts per short task id, for live tasks and the last `history.finishedTasks` finished ones
   * (exact counts).
   */
  attemptsByTask: Record<string, number>;
  /** Epoch ms of each task's most recent attempts (up to `history.attemptsPerTask`). */
  attemptTimesByTask: Record<string, number[]>;
  /** maxBurstSize in force (derived or the client's, per the burst rule). */
  burst: number;
  /** Dispatches per second the queue enforces now: the configured rate × ramp × throttle. */
  enforcedRate: number;
  /** The ramp-up share (1 = not ramping) and the system-throttle share (1 = not throttled) now. */
  rampShare: number;
  throttleShare: number;
  /** Ramps started (new, idle or resumed queue). */
  ramps: number;
  /** 429/503 answers that lowered the enforced rate. */
  throttleDrops: number;
  /** CreateTask calls admitted per second now (500/50/5); undefined when that behaviour is off. */
  createLimitPerSecond: number | undefined;
  /** CreateTask calls refused (RESOURCE_EXHAUSTED) or held back past that limit. */
  createsRejected: number;
  createsDelayed: number;
  /** Sizes of what the queue keeps, to check memory stays bounded in long runs. */
  retained: RetainedCounts & { pendingEntries: number };
}

interface PendingEntry {
  dueMs: number;
  seq: number;
  task: TaskRecord;
  version: number;
}

interface IdleWaiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

const HTTP_RETRY_REASON = 'HTTP_ERROR';

/** While the enforced rate is below the configured one, how often the bucket is re-scaled. */
const RATE_RECHECK_MS = 100;

/**
 * One queue: its tasks, its token bucket and the dispatcher. Tasks become eligible at their
 * schedule time (plus the dispatch jitter, if any) and go out in that order (creation order on
 * ties), one token each, while fewer than maxConcurrentDispatches attempts are outstanding and the
 * queue is RUNNING. The bucket's rate and capacity are the configured ones scaled by the share the
 * queue enforces (ramp-up and system throttling, both off in the ideal profile).
 */
export class QueueRuntime {
  readonly name: string;
  readonly id: string;
  state: 'RUNNING' | 'PAUSED' = 'RUNNING';
  rateLimits: RateLimits;
  /** True when maxBurstSize was given by the caller rather than derived from the rate. */
  burstExplicit: boolean;
  retry: RetryPolicy;
  purgeTimeMs: number | undefined;
  samplingRatio: number | undefined;

  private readonly tasks = new Map<string, TaskRecord>();
  private readonly pending = new MinHeap<PendingEntry>(
    (a, b) => a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.seq < b.seq),
  );
  private readonly bucket: TokenBucket;
  private readonly enforced: EnforcedRate;
  /** The share the bucket is scaled by now. */
  private bucketShare = 1;
  readonly admission: CreateAdmission;
  private readonly history: DispatchHistory;
  private readonly duplicateTimers = new Set<NodeJS.Timeout>();
  private readonly waiters: IdleWaiter[] = [];
  private seq = 0;
  private inFlight = 0;
  private duplicatesOut = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counters = {
    dispatches: 0,
    duplicates: 0,
    succeeded: 0,
    failedAttempts: 0,
    exhausted: 0,
    peak: 0,
  };

  constructor(
    name: string,
    config: { rateLimits: RateLimits; burstExplicit: boolean; retry: RetryPolicy; samplingRatio?: number },
    private readonly env: QueueEnvironment,
  ) {
    this.name = name;
    this.id = name.slice(name.lastIndexOf('/') + 1);
    this.rateLimits = config.rateLimits;
    this.burstExplicit = config.burstExplicit;
    this.retry = config.retry;
    this.samplingRatio = config.samplingRatio;
    this.bucket = new TokenBucket(
      config.rateLimits.maxDispatchesPerSecond,
      config.rateLimits.maxBurstSize,
      Date.now(),
    );
    const behaviours = () => env.settings.behaviours;
    this.enforced = new EnforcedRate(
      () => behaviours().dispatchRamp,
      () => behaviours().throttle,
    );
    this.admission = new CreateAdmission(() => behaviours().createRamp);
    this.history = new DispatchHistory(() => env.settings.history);
  }

  /** Replaces rate limits and retry settings (UpdateQueue); takes effect for the next dispatch. */
  reconfigure(config: {
    rateLimits: RateLimits;
    burstExplicit: boolean;
    retry: RetryPolicy;
    samplingRatio?: number;
  }): void {
    this.rateLimits = config.rateLimits;
    this.burstExplicit = config.burstExplicit;
    this.retry = config.retry;
    this.samplingRatio = config.samplingRatio;
    this.scaleBucket(Date.now(), true);
    this.pump();
  }

  /** The burst rule changed: a derived burst follows it at once (an explicit one stays). */
  rederiveBurst(): void {
    const rule = this.env.settings.behaviours.burst;
    const rate = this.rateLimits.maxDispatchesPerSecond;
    const derived = deriveBurst(rule, rate);
    if (derived !== undefined) {
      this.rateLimits = { ...this.rateLimits, maxBurstSize: derived };
      this.burstExplicit = false;
    } else if (!this.burstExplicit) {
      this.rateLimits = { ...this.rateLimits, maxBurstSize: defaultBurstSize(rate) };
    }
    this.scaleBucket(Date.now(), true);
    this.pump();
  }

  hasTask(id: string): boolean {
    return this.tasks.has(id);
  }

  getTask(id: string): TaskRecord | undefined {
    return this.tasks.get(id);
  }

  /** Tasks in schedule-time order. */
  listTasks(): TaskRecord[] {
    return [...this.tasks.values()].sort(
      (a, b) => a.scheduleTimeMs - b.scheduleTimeMs || a.createTimeMs - b.createTimeMs,
    );
  }

  addTask(task: TaskRecord): void {
    this.tasks.set(task.id, task);
    this.enqueue(task);
    this.pump();
  }

  /** Removes a task; an attempt already out still runs but its outcome is ignored. */
  deleteTask(id: string): boolean {
    const task = this.tasks.get(id);
    if (task === undefined) return false;
    this.remove(task, Date.now());
    this.notify();
    return true;
  }

  /**
   * RunTask: dispatches now, regardless of rate limits, concurrency, pause or schedule time.
   * Returns the task as it is right after dispatch.
   */
  runTask(id: string): TaskRecord | undefined {
    const task = this.tasks.get(id);
    if (task === undefined) return undefined;
    this.startAttempt(task, Date.now());
    return task;
  }

  pause(): void {
    this.state = 'PAUSED';
    this.disarm();
  }

  resume(): void {
    const wasPaused = this.state === 'PAUSED';
    this.state = 'RUNNING';
    if (wasPaused) this.enforced.resumed(Date.now());
    this.pump();
  }

  /** Deletes every task (their names stay reserved) and records the purge time. */
  purge(): void {
    const now = Date.now();
    for (const task of [...this.tasks.values()]) this.remove(task, now);
    this.pending.clear();
    this.purgeTimeMs = now;
    this.notify();
  }

  /** True when no task is left and nothing (duplicates included) is on the wire. */
  isIdle(): boolean {
    return (
      this.tasks.size === 0 &&
      this.inFlight === 0 &&
      this.duplicatesOut === 0 &&
      this.duplicateTimers.size === 0
    );
  }

  /** Resolves once the queue is idle; rejects if the queue is closed first. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Stops dispatching for good; in-flight attempts are aborted through the shared signal. */
  close(reason: string): void {
    this.closed = true;
    this.disarm();
    for (const timer of this.duplicateTimers) clearTimeout(timer);
    this.duplicateTimers.clear();
    for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`queue ${this.name} ${reason}`));
  }

  stats(): QueueStats {
    const now = Date.now();
    const dispatchTimes = this.history.dispatchTimes();
    const first = dispatchTimes[0];
    const perSecond: number[] = [];
    if (first !== undefined) {
      for (const t of dispatchTimes) {
        const bucket = Math.floor((t - first) / 1000);
        perSecond[bucket] = (perSecond[bucket] ?? 0) + 1;
      }
      for (let i = 0; i < perSecond.length; i++) perSecond[i] ??= 0;
    }
    const attemptsByTask: Record<string, number> = {};
    const attemptTimesByTask: Record<string, number[]> = {};
    for (const [id, { attempts, times }] of this.history.tasks()) {
      attemptsByTask[id] = attempts;
      attemptTimesByTask[id] = times;
    }
    const rampShare = this.enforced.rampShare(now);
    const throttleShare = this.enforced.throttleShare(now);
    return {
      name: this.name,
      state: this.state,
      tasks: this.tasks.size,
      inFlight: this.inFlight,
      dispatches: this.counters.dispatches,
      duplicates: this.counters.duplicates,
      succeeded: this.counters.succeeded,
      failedAttempts: this.counters.failedAttempts,
      exhausted: this.counters.exhausted,
      peakConcurrency: this.counters.peak,
      dispatchTimes,
      perSecond,
      attemptsByTask,
      attemptTimesByTask,
      burst: this.rateLimits.maxBurstSize,
      enforcedRate: this.rateLimits.maxDispatchesPerSecond * rampShare * throttleShare,
      rampShare,
      throttleShare,
      ramps: this.enforced.ramps,
      throttleDrops: this.enforced.throttleDrops,
      createLimitPerSecond: this.admission.currentLimit(now),
      createsRejected: this.admission.rejected,
      createsDelayed: this.admission.delayed,
      retained: { ...this.history.retained(), pendingEntries: this.pending.size },
    };
  }

  /** Puts the task on the heap, due at its schedule time plus the dispatch jitter (no ordering). */
  private enqueue(task: TaskRecord): void {
    const { dispatchJitterMs } = this.env.settings.behaviours;
    const jitter = dispatchJitterMs > 0 ? this.env.settings.random() * dispatchJitterMs : 0;
    this.pending.push({ dueMs: task.scheduleTimeMs + jitter, seq: this.seq++, task, version: task.version });
  }

  private remove(task: TaskRecord, nowMs: number): void {
    if (this.tasks.get(task.id) !== task) return;
    this.tasks.delete(task.id);
    task.version++;
    this.history.taskFinished(task.id);
    this.env.onTaskGone(task, nowMs);
  }

  /**
   * Scales the bucket to the share the queue enforces now: rate × share, burst × share (at least
   * one token, so a dispatch can happen at all). `force` re-applies after the limits changed.
   */
  private scaleBucket(nowMs: number, force = false): void {
    const share = this.enforced.share(nowMs);
    if (!force && share === this.bucketShare) return;
    this.bucketShare = share;
    const { maxDispatchesPerSecond, maxBurstSize } = this.rateLimits;
    this.bucket.reconfigure(maxDispatchesPerSecond * share, Math.max(1, maxBurstSize * share), nowMs);
  }

  /** The earliest pending entry that is still current, dropping stale ones. */
  private peekPending(): PendingEntry | undefined {
    for (;;) {
      const top = this.pending.peek();
      if (top === undefined) return undefined;
      if (top.version === top.task.version && this.tasks.get(top.task.id) === top.task) return top;
      this.pending.pop();
    }
  }

  private pump(): void {
    if (this.closed || this.state !== 'RUNNING') return;
    this.disarm();
    const now = Date.now();
    while (this.inFlight < this.rateLimits.maxConcurrentDispatches) {
      const next = this.peekPending();
      if (next === undefined) return;
      if (next.dueMs > now) {
        this.arm(next.dueMs - now);
        return;
      }
      this.enforced.beforeDispatch(now);
      this.scaleBucket(now);
      const wait = this.bucket.msUntilToken(now);
      if (wait > 0) {
        // Below the full rate the share keeps rising: look again soon rather than at the slow rate.
        const recheck = this.bucketShare < 1 ? Math.min(wait, RATE_RECHECK_MS) : wait;
        if (Number.isFinite(recheck)) this.arm(recheck);
        return;
      }
      this.bucket.tryTake(now);
      this.pending.pop();
      this.enforced.dispatched(now);
      this.startAttempt(next.task, now);
    }
    // At the concurrency cap: the next completion calls pump again.
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.max(1, Math.ceil(delayMs)),
    );
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private startAttempt(task: TaskRecord, nowMs: number): void {
    task.version++;
    task.inFlight++;
    this.inFlight++;
    this.counters.peak = Math.max(this.counters.peak, this.inFlight);
    this.counters.dispatches++;
    this.history.recordAttempt(task.id, nowMs);

    const meta: AttemptMetadata = {
      queueId: this.id,
      taskId: task.id,
      retryCount: task.dispatchCount,
      executionCount: task.executionCount,
      etaMs: task.scheduleTimeMs,
      ...(task.previousResponse !== undefined ? { previousResponse: task.previousResponse } : {}),
      ...(task.retryReason !== undefined ? { retryReason: task.retryReason } : {}),
    };
    task.dispatchCount++;
    const attempt: AttemptRecord = { scheduleTimeMs: task.scheduleTimeMs, dispatchTimeMs: nowMs };
    task.lastAttempt = attempt;
    // Upstream keeps only the dispatch time of the first attempt.
    task.firstAttempt ??= { dispatchTimeMs: nowMs };

    const headers = buildDispatchHeaders(
      task.target,
      meta,
      nowMs,
      this.env.settings.behaviours.defaultContentType,
    );
    const options = { deadlineMs: task.dispatchDeadlineMs, agents: this.env.agents, signal: this.env.signal };
    void sendAttempt(task.target, headers, options).then((outcome) =>
      this.finishAttempt(task, attempt, outcome),
    );
    this.maybeDuplicate(task, headers, options);
  }

  /** The at-least-once fault: the same attempt delivered again shortly after, outcome ignored. */
  private maybeDuplicate(
    task: TaskRecord,
    headers: Record<string, string>,
    options: Parameters<typeof sendAttempt>[2],
  ): void {
    const { duplicateShare, random } = this.env.settings;
    if (duplicateShare <= 0 || random() >= duplicateShare) return;
    const delayMs = 10 + Math.floor(random() * 90);
    const timer = setTimeout(() => {
      this.duplicateTimers.delete(timer);
      if (this.closed) return;
      this.duplicatesOut++;
      this.counters.duplicates++;
      void sendAttempt(task.target, headers, options).then(() => {
        this.duplicatesOut--;
        this.notify();
      });
    }, delayMs);
    this.duplicateTimers.add(timer);
  }

  private finishAttempt(task: TaskRecord, attempt: AttemptRecord, outcome: AttemptOutcome): void {
    task.inFlight--;
    this.inFlight--;
    if (outcome.kind === 'aborted' || this.closed) return;
    const now = Date.now();
    let retryAfterMs: number | undefined;
    if (outcome.kind === 'response') {
      attempt.responseTimeMs = now;
      attempt.responseStatus = {
        code: rpcCodeForHttpStatus(outcome.status),
        message: `HTTP ${outcome.status}`,
      };
      task.responseCount++;
      if (outcome.status < 500) task.executionCount++;
      task.previousResponse = outcome.status;
      task.retryReason = HTTP_RETRY_REASON;
      if (outcome.status === 429 || outcome.status === 503) {
        retryAfterMs = parseRetryAfterMs(outcome.retryAfter, now);
        // System throttling: the whole queue slows down, whichever task was refused.
        this.enforced.backoffSignal(now);
      }
    } else if (outcome.kind === 'deadline') {
      attempt.responseStatus = {
        code: 4,
        message: 'DEADLINE_EXCEEDED: no response within the dispatch deadline',
      };
      task.previousResponse = undefined;
      task.retryReason = 'DEADLINE_EXCEEDED';
    } else {
      attempt.responseStatus = { code: 14, message: `UNAVAILABLE: ${outcome.message}` };
      task.previousResponse = undefined;
      task.retryReason = 'UNREACHABLE';
    }
    const live = this.tasks.get(task.id) === task;
    if (outcome.kind === 'response' && outcome.status >= 200 && outcome.status < 300) {
      this.counters.succeeded++;
      if (live) this.remove(task, now);
    } else {
      this.counters.failedAttempts++;
      // With a RunTask attempt still out, that one decides what happens next.
      if (live && task.inFlight === 0) this.afterFailure(task, now, retryAfterMs);
    }
    this.notify();
    this.pump();
  }

  private afterFailure(task: TaskRecord, nowMs: number, retryAfterMs: number | undefined): void {
    const firstDispatch = task.firstAttempt?.dispatchTimeMs ?? nowMs;
    if (retriesExhausted(this.retry, task.dispatchCount, nowMs - firstDispatch)) {
      this.counters.exhausted++;
      this.remove(task, nowMs);
      return;
    }
    let delay = retryDelayMs(this.retry, task.dispatchCount - 1);
    // 429/503 with Retry-After: the next attempt waits that long, exactly (ideal) or about (strict).
    if (retryAfterMs !== undefined) {
      const { retryAfterJitter } = this.env.settings.behaviours;
      const factor = retryAfterJitter > 0 ? 1 + retryAfterJitter * (2 * this.env.settings.random() - 1) : 1;
      delay = Math.max(delay, retryAfterMs * factor);
    }
    task.scheduleTimeMs = nowMs + delay;
    task.version++;
    this.enqueue(task);
  }

  private notify(): void {
    if (!this.isIdle()) return;
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
  }
}
