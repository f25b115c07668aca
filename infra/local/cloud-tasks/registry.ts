import { randomInt } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { status } from '@grpc/grpc-js';
import { createPrng } from '../prng.js';
import { createDispatchAgents, type DispatchAgents } from './dispatch.js';
import { notFound, RpcError } from './errors.js';
import { DEFAULT_HISTORY, type HistoryLimits } from './history.js';
import {
  applyOverrides,
  type BehaviourOverrides,
  type Behaviours,
  type CloudTasksProfile,
  profileBehaviours,
} from './profile.js';
import { type DispatchSettings, QueueRuntime, type QueueStats, type TaskRecord } from './queue.js';
import type { QueueConfig } from './resources.js';

/** Emulator-wide knobs that can change while it runs. */
export interface EmulatorSettings {
  /** Share (0…1) of attempts delivered twice, for at-least-once testing. Default 0. */
  duplicateShare: number;
  /** Seed of the PRNG behind the fault knobs and the strict behaviours' randomness. Default 1. */
  seed: number;
  /** How long a used task name stays reserved after its task is gone. Default 1 h. */
  dedupWindowMs: number;
  /** The preset the behaviours started from. */
  profile: CloudTasksProfile;
  /** Each upstream behaviour, as the profile and the overrides set it. */
  behaviours: Behaviours;
  /** How much dispatch and attempt history the stats keep. */
  history: HistoryLimits;
}

/**
 * What {@link Registry.configure} takes: any plain knob, a profile (its preset replaces every
 * behaviour before the overrides in the same call apply), single behaviour overrides and history
 * limits.
 */
export type SettingsChange = Partial<
  Pick<EmulatorSettings, 'duplicateShare' | 'seed' | 'dedupWindowMs' | 'profile'>
> &
  BehaviourOverrides & { history?: Partial<HistoryLimits> };

/** The default settings: no faults, a one-hour dedup window as upstream, the ideal profile. */
export const DEFAULT_SETTINGS: EmulatorSettings = {
  duplicateShare: 0,
  seed: 1,
  dedupWindowMs: 60 * 60_000,
  profile: 'ideal',
  behaviours: profileBehaviours('ideal'),
  history: DEFAULT_HISTORY,
};

/** The settings `change` makes of `current`; throws on a knob out of range. */
export function nextSettings(current: EmulatorSettings, change: SettingsChange): EmulatorSettings {
  const { duplicateShare, seed, dedupWindowMs, profile, history, ...overrides } = change;
  const base = profile !== undefined ? profileBehaviours(profile) : current.behaviours;
  const next: EmulatorSettings = {
    duplicateShare: duplicateShare ?? current.duplicateShare,
    seed: seed ?? current.seed,
    dedupWindowMs: dedupWindowMs ?? current.dedupWindowMs,
    profile: profile ?? current.profile,
    behaviours: applyOverrides(base, overrides),
    history: { ...current.history, ...history },
  };
  if (!(next.duplicateShare >= 0 && next.duplicateShare <= 1))
    throw new Error('duplicateShare must be in [0, 1]');
  if (!(next.dedupWindowMs >= 0)) throw new Error('dedupWindowMs must be >= 0');
  for (const [key, value] of Object.entries(next.history)) {
    if (!(Number.isInteger(value) && value >= 0)) throw new Error(`history.${key} must be an integer >= 0`);
  }
  return next;
}

/**
 * All state of one emulator: queues by full name, reserved task names, the shared HTTP pools
 * and the abort signal that ends in-flight attempts on close.
 */
export class Registry {
  private readonly queues = new Map<string, QueueRuntime>();
  /** Deleted queue name → epoch ms of the deletion; the window is read live from the settings. */
  private readonly tombstones = new Map<string, number>();
  /** Task name → epoch ms until which the name cannot be reused. */
  private readonly reservedNames = new Map<string, number>();
  private readonly agents: DispatchAgents = createDispatchAgents();
  private readonly abort = new AbortController();
  private readonly dispatch: DispatchSettings;
  private settings: EmulatorSettings;
  private lastSweepMs = 0;

  constructor(settings: EmulatorSettings) {
    this.settings = nextSettings(settings, {});
    this.dispatch = {
      duplicateShare: this.settings.duplicateShare,
      random: createPrng(this.settings.seed),
      behaviours: this.settings.behaviours,
      history: this.settings.history,
    };
    // Every in-flight attempt listens on this signal; thousands at once are expected, not a leak.
    setMaxListeners(0, this.abort.signal);
  }

  /**
   * Changes knobs at run time; a new seed restarts the PRNG sequence. A new burst rule re-derives
   * every queue's burst at once; the other behaviours apply from the next decision they make.
   */
  configure(change: SettingsChange): void {
    const next = nextSettings(this.settings, change);
    const burstChanged = next.behaviours.burst !== this.settings.behaviours.burst;
    this.settings = next;
    this.dispatch.duplicateShare = next.duplicateShare;
    this.dispatch.behaviours = next.behaviours;
    this.dispatch.history = next.history;
    if (change.seed !== undefined) this.dispatch.random = createPrng(change.seed);
    if (burstChanged) for (const queue of this.queues.values()) queue.rederiveBurst();
  }

  currentSettings(): EmulatorSettings {
    return { ...this.settings };
  }

  hasQueue(name: string): boolean {
    return this.queues.has(name);
  }

  /**
   * The queue, or NOT_FOUND; a name still in its tombstone window answers FAILED_PRECONDITION
   * with upstream's wording.
   */
  queue(name: string): QueueRuntime {
    const queue = this.queues.get(name);
    if (queue !== undefined) return queue;
    if (this.inTombstone(name, Date.now())) {
      throw new RpcError(
        status.FAILED_PRECONDITION,
        'The queue no longer exists, though a queue with this name existed recently.',
      );
    }
    throw notFound(name);
  }

  /** FAILED_PRECONDITION when `name` belonged to a queue deleted within the tombstone window. */
  checkQueueNameUsable(name: string): void {
    if (this.inTombstone(name, Date.now())) {
      throw new RpcError(
        status.FAILED_PRECONDITION,
        'The queue cannot be created because a queue with this name existed too recently.',
      );
    }
  }

  /** Queues whose name starts with `parent/queues/`, in name order. */
  queuesUnder(parent: string): QueueRuntime[] {
    const prefix = `${parent}/queues/`;
    return [...this.queues.values()]
      .filter((q) => q.name.startsWith(prefix))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  createQueue(name: string, config: QueueConfig): QueueRuntime {
    if (this.queues.has(name)) throw new RpcError(status.ALREADY_EXISTS, `Queue already exists: ${name}`);
    this.checkQueueNameUsable(name);
    const queue = new QueueRuntime(name, config, {
      agents: this.agents,
      signal: this.abort.signal,
      settings: this.dispatch,
      onTaskGone: (task, nowMs) => this.reserve(task, nowMs),
    });
    this.queues.set(name, queue);
    return queue;
  }

  deleteQueue(name: string): void {
    const queue = this.queue(name);
    queue.purge();
    queue.close('was deleted');
    this.queues.delete(name);
    const now = Date.now();
    for (const held of this.tombstones.keys()) if (!this.inTombstone(held, now)) this.tombstones.delete(held);
    this.tombstones.set(name, now);
  }

  /** ALREADY_EXISTS when the name is held by a live task or was used within the dedup window. */
  checkTaskNameFree(queue: QueueRuntime, taskName: string, taskId: string, nowMs: number): void {
    const reservedUntil = this.reservedNames.get(taskName);
    const recentlyUsed = reservedUntil !== undefined && reservedUntil > nowMs;
    if (queue.hasTask(taskId) || recentlyUsed) {
      throw new RpcError(status.ALREADY_EXISTS, `Requested entity already exists: ${taskName}`);
    }
  }

  /** A fresh id for an unnamed task: digits, like upstream's generated ids. */
  generateTaskId(queue: QueueRuntime): string {
    for (;;) {
      const id = `${randomInt(1, 10 ** 9)}${String(randomInt(0, 10 ** 10)).padStart(10, '0')}`;
      if (!queue.hasTask(id) && !this.reservedNames.has(`${queue.name}/tasks/${id}`)) return id;
    }
  }

  /** Statistics of one queue (full name, or short id when unambiguous) or of all. */
  stats(queueName?: string): QueueStats | Record<string, QueueStats> {
    if (queueName !== undefined) return this.resolve(queueName).stats();
    const all: Record<string, QueueStats> = {};
    for (const [name, queue] of this.queues) all[name] = queue.stats();
    return all;
  }

  /** Waits until the queue holds no task and nothing is on the wire. */
  async drain(queueName: string, timeoutMs: number): Promise<void> {
    const queue = this.resolve(queueName);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const left = queue.stats();
        reject(
          new Error(
            `queue ${queue.name} not drained after ${timeoutMs} ms (${left.tasks} tasks, ${left.inFlight} in flight)`,
          ),
        );
      }, timeoutMs);
    });
    try {
      await Promise.race([queue.whenIdle(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops every queue, aborts in-flight attempts and frees the connection pools. */
  close(): void {
    for (const queue of this.queues.values()) queue.close('closed with the emulator');
    this.abort.abort();
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private resolve(queueName: string): QueueRuntime {
    const exact = this.queues.get(queueName);
    if (exact !== undefined) return exact;
    const matches = [...this.queues.values()].filter((q) => q.id === queueName);
    if (matches.length === 1 && matches[0] !== undefined) return matches[0];
    throw new Error(
      matches.length === 0
        ? `no queue named ${queueName}`
        : `queue id ${queueName} is ambiguous; use the full name`,
    );
  }

  private inTombstone(name: string, nowMs: number): boolean {
    const deletedAt = this.tombstones.get(name);
    return deletedAt !== undefined && deletedAt + this.settings.behaviours.queueTombstoneMs > nowMs;
  }

  private reserve(task: TaskRecord, nowMs: number): void {
    this.reservedNames.set(task.name, nowMs + this.settings.dedupWindowMs);
    // Expired reservations are swept at most once a second to keep the map bounded.
    if (nowMs - this.lastSweepMs < 1000) return;
    this.lastSweepMs = nowMs;
    for (const [name, until] of this.reservedNames) if (until <= nowMs) this.reservedNames.delete(name);
  }
}
