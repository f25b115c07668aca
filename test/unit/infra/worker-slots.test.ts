import { describe, expect, it } from 'vitest';
import { SlotGate, workerCapacityFromEnv, workerSlots } from '../../../infra/local/worker-slots.js';

/** Timers the test fires itself: the pending window passes when the test says so. */
function manualTimers() {
  const pending = new Map<number, () => void>();
  let next = 0;
  return {
    set: (fn: () => void) => {
      pending.set(++next, fn);
      return next;
    },
    clear: (handle: unknown) => {
      pending.delete(handle as number);
    },
    /** The pending windows run out. */
    expireAll: () => {
      for (const [id, fn] of [...pending]) {
        pending.delete(id);
        fn();
      }
    },
    get count() {
      return pending.size;
    },
  };
}

describe('the local worker’s slots (Cloud Run’s max instances × concurrency)', () => {
  it('serves max instances × concurrency at once, as the env sets them', () => {
    expect(workerSlots(workerCapacityFromEnv({}))).toBe(400);
    const capacity = workerCapacityFromEnv({ FANOUT_INSTANCES: '3', FANOUT_WORKER_CONCURRENCY: '4' });
    expect(workerSlots(capacity)).toBe(12);
    expect(capacity.pendingMs).toBe(10_000);
    expect(() => workerCapacityFromEnv({ FANOUT_WORKER_CONCURRENCY: '0' })).toThrow(
      /FANOUT_WORKER_CONCURRENCY/,
    );
  });

  it('grants up to the limit at once, queues the next, and refuses it with 429 when no slot frees in the window', () => {
    const timers = manualTimers();
    const gate = new SlotGate(2, 10_000, timers);
    const answers: boolean[] = [];

    gate.acquire('a', (g) => answers.push(g));
    gate.acquire('b', (g) => answers.push(g));
    gate.acquire('a', (g) => answers.push(g));

    expect(answers).toEqual([true, true]);
    expect(gate.queued).toBe(1);
    timers.expireAll();
    expect(answers).toEqual([true, true, false]);
    expect(gate.busy).toBe(2);
  });

  it('hands a released slot to the first request waiting, within its window', () => {
    const timers = manualTimers();
    const gate = new SlotGate(1, 10_000, timers);
    const order: string[] = [];

    gate.acquire('a', () => order.push('first'));
    gate.acquire('b', (g) => order.push(`second ${g}`));
    gate.acquire('a', (g) => order.push(`third ${g}`));
    gate.release('a');

    expect(order).toEqual(['first', 'second true']);
    expect(gate.busy).toBe(1);
    expect(timers.count).toBe(1);
  });

  it('frees the slots of an instance that died and forgets its waiting requests', () => {
    const timers = manualTimers();
    const gate = new SlotGate(2, 10_000, timers);
    const answers: string[] = [];

    gate.acquire('dead', () => undefined);
    gate.acquire('dead', () => undefined);
    gate.acquire('dead', (g) => answers.push(`dead ${g}`));
    gate.acquire('alive', (g) => answers.push(`alive ${g}`));
    gate.dropOwner('dead');

    expect(answers).toEqual(['alive true']);
    expect(gate.busy).toBe(1);
    expect(gate.queued).toBe(0);
    gate.release('dead');
    expect(gate.busy).toBe(1);
  });
});
