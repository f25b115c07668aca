/** How much of a queue's past its stats keep. */
export interface HistoryLimits {
  /** Dispatch times kept (the most recent). */
  dispatches: number;
  /** Finished tasks whose attempt history is kept (the most recently finished). */
  finishedTasks: number;
  /** Attempt times kept per task (the most recent; the count is always exact). */
  attemptsPerTask: number;
}

/** Enough for any test or benchmark to read a run's dispatches; a few MB at most. */
export const DEFAULT_HISTORY: HistoryLimits = {
  dispatches: 100_000,
  finishedTasks: 10_000,
  attemptsPerTask: 100,
};

interface TaskHistory {
  attempts: number;
  times: number[];
}

/** How many entries each structure holds now: what a long run's memory is made of. */
export interface RetainedCounts {
  dispatchTimes: number;
  liveTasks: number;
  finishedTasks: number;
  attemptTimes: number;
}

/**
 * A queue's dispatch and attempt record for stats, in bounded memory: the last `dispatches`
 * dispatch times (a ring), the attempt history of every live task and of the last `finishedTasks`
 * finished ones, at most `attemptsPerTask` times each. Nothing here is needed to dispatch (the
 * token bucket holds the rate); it only serves stats, so it forgets the oldest first.
 */
export class DispatchHistory {
  private ring: number[] = [];
  /** Next write position once the ring is full. */
  private head = 0;
  private readonly live = new Map<string, TaskHistory>();
  /** Insertion order = finishing order, so the first key is the oldest. */
  private readonly finished = new Map<string, TaskHistory>();

  constructor(private readonly limits: () => HistoryLimits) {}

  recordAttempt(taskId: string, nowMs: number): void {
    const { dispatches, attemptsPerTask } = this.limits();
    if (this.ring.length < dispatches) {
      // The limit was raised after the ring wrapped: unroll it so pushing keeps the order.
      if (this.head !== 0) this.shrinkRing(this.ring.length);
      this.ring.push(nowMs);
    } else if (dispatches > 0) {
      if (this.ring.length > dispatches) this.shrinkRing(dispatches);
      this.ring[this.head] = nowMs;
      this.head = (this.head + 1) % dispatches;
    }
    let history = this.live.get(taskId);
    if (history === undefined) {
      // A name used again after its dedup window continues its old record.
      history = this.finished.get(taskId) ?? { attempts: 0, times: [] };
      this.finished.delete(taskId);
      this.live.set(taskId, history);
    }
    history.attempts++;
    history.times.push(nowMs);
    if (history.times.length > attemptsPerTask)
      history.times.splice(0, history.times.length - attemptsPerTask);
  }

  /** The task left the queue: its history moves to the bounded finished set. */
  taskFinished(taskId: string): void {
    const history = this.live.get(taskId);
    if (history === undefined) return;
    this.live.delete(taskId);
    this.finished.set(taskId, history);
    const { finishedTasks } = this.limits();
    for (const oldest of this.finished.keys()) {
      if (this.finished.size <= finishedTasks) break;
      this.finished.delete(oldest);
    }
  }

  /** Kept dispatch times, oldest first. */
  dispatchTimes(): number[] {
    if (this.head === 0) return [...this.ring];
    return [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
  }

  /** Attempt count and kept times per task id (finished ones first, then live ones). */
  tasks(): Array<[string, { attempts: number; times: number[] }]> {
    const out: Array<[string, { attempts: number; times: number[] }]> = [];
    for (const map of [this.finished, this.live])
      for (const [id, h] of map) out.push([id, { attempts: h.attempts, times: [...h.times] }]);
    return out;
  }

  retained(): RetainedCounts {
    let attemptTimes = 0;
    for (const map of [this.finished, this.live])
      for (const h of map.values()) attemptTimes += h.times.length;
    return {
      dispatchTimes: this.ring.length,
      liveTasks: this.live.size,
      finishedTasks: this.finished.size,
      attemptTimes,
    };
  }

  /** The limit was lowered at run time: keep the newest `size` times. */
  private shrinkRing(size: number): void {
    this.ring = this.dispatchTimes().slice(-size);
    this.head = 0;
  }
}
