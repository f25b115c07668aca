import { describe, expect, it } from 'vitest';
import { sleep } from '../../../functions/api/sleep.js';

describe('sleep', () => {
  it('resolves once its time has passed', async () => {
    await expect(sleep(0)).resolves.toBeUndefined();
  });

  it("rejects with the signal's own reason when aborted during the wait", async () => {
    const controller = new AbortController();
    const reason = new Error('the media deadline passed');

    const waiting = sleep(60_000, controller.signal);
    controller.abort(reason);

    await expect(waiting).rejects.toBe(reason);
  });

  it('rejects at once with the reason of a signal that has already aborted', async () => {
    const reason = new Error('stopped');

    await expect(sleep(60_000, AbortSignal.abort(reason))).rejects.toBe(reason);
  });
});
