import { describe, expect, it } from 'vitest';
import { activeFault, parseFrontFault, withFault } from '../../../infra/local/front-faults.js';

describe("the local functions host's front faults", () => {
  it('refuses deliveries of the faulty queue only, until the fault runs out', () => {
    const fault = parseFrontFault({ queue: 'fanout-a', status: 429, seconds: 20 }, 1000);
    if (typeof fault === 'string') throw new Error(fault);

    expect(activeFault([fault], 'fanout-a', 20_999)).toEqual(fault);
    expect(activeFault([fault], 'fanout-a', 21_000)).toBeUndefined();
    expect(activeFault([fault], 'fanout-b', 2000)).toBeUndefined();
    expect(activeFault([fault], undefined, 2000)).toBeUndefined();
  });

  it('replaces a fault of the same queue (seconds 0 ends it) and drops the ones that ran out', () => {
    const a = { queue: 'fanout-a', status: 503, untilMs: 5000 };
    const old = { queue: 'fanout-old', status: 429, untilMs: 1500 };
    const ended = { queue: 'fanout-a', status: 429, untilMs: 2000 };

    expect(withFault([a, old], ended, 2000)).toEqual([ended]);
  });

  it('names what is wrong with a control request', () => {
    expect(parseFrontFault({ status: 429, seconds: 1 }, 0)).toMatch(/queue/);
    expect(parseFrontFault({ queue: 'q', status: 200, seconds: 1 }, 0)).toMatch(/status/);
    expect(parseFrontFault({ queue: 'q', status: 503, seconds: -1 }, 0)).toMatch(/seconds/);
  });
});
