import { describe, expect, it } from 'vitest';
import { MediaBudget } from '../../../../functions/platform/media/budget.js';
import { MediaError } from '../../../../functions/platform/media/error.js';

describe('MediaBudget', () => {
  it('grants at once while there is room', async () => {
    const budget = new MediaBudget(100, 1000);

    const a = await budget.acquire(60);
    const b = await budget.acquire(40);

    expect(budget.heldBytes).toBe(100);
    a.release();
    b.release();
    expect(budget.heldBytes).toBe(0);
  });

  it('grants waiters in arrival order as room comes back', async () => {
    const budget = new MediaBudget(100, 1000);
    const first = await budget.acquire(90);
    const order: string[] = [];

    const granted = async (name: string, bytes: number) => {
      const hold = await budget.acquire(bytes);
      order.push(name);
      return hold;
    };
    const big = granted('big', 80);
    const small = granted('small', 10);
    await Promise.resolve();
    expect(budget.waiting).toBe(2);
    first.release();
    const [bigHold, smallHold] = await Promise.all([big, small]);

    expect(order).toEqual(['big', 'small']);
    expect(budget.heldBytes).toBe(90);
    bigHold.release();
    smallHold.release();
  });

  it('gives back what a shrunk hold no longer needs, and releases once', async () => {
    const budget = new MediaBudget(100, 1000);
    const hold = await budget.acquire(100);

    hold.shrink(30);
    hold.shrink(50); // never grows
    expect(budget.heldBytes).toBe(30);
    hold.release();
    hold.release();
    expect(budget.heldBytes).toBe(0);
  });

  it('fails a waiter that finds no room in time with a retryable MediaError, and forgets it', async () => {
    const budget = new MediaBudget(100, 30);
    const hold = await budget.acquire(100);

    const err = await budget.acquire(1).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(MediaError);
    expect((err as MediaError).permanent).toBe(false);
    expect(budget.waiting).toBe(0);
    hold.release();
    expect(budget.heldBytes).toBe(0);
  });

  it('lets a waiter go when its signal aborts, with the signal’s reason', async () => {
    const budget = new MediaBudget(100, 10_000);
    const hold = await budget.acquire(100);
    const controller = new AbortController();

    const waiting = budget.acquire(50, controller.signal).catch((e: unknown) => e);
    controller.abort(new Error('deadline'));

    expect(await waiting).toEqual(new Error('deadline'));
    expect(budget.waiting).toBe(0);
    hold.release();
  });

  it('refuses at once what could never fit', async () => {
    const budget = new MediaBudget(100, 10_000);

    const err = await budget.acquire(101).catch((e: unknown) => e);

    expect((err as MediaError).permanent).toBe(true);
  });
});
