import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { createInstanceMeter, sumUsage, usageSince } from '../../../../infra/local/usage/functions-meter.js';

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A server whose handler answers when `release` is called; its meter on a clock the test moves. */
async function meteredServer() {
  let clock = 0;
  const meter = createInstanceMeter(() => clock);
  const pending: Array<() => void> = [];
  const server = createServer((_req, res) => pending.push(() => res.end('ok')));
  meter.meter(server, 'worker');
  servers.push(server);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  const call = () =>
    new Promise<void>((ok) => {
      request({ port, host: '127.0.0.1', agent: false }, (res) => res.resume().on('end', ok)).end();
    });
  const arrived = async (n: number) => {
    while (pending.length < n) await new Promise((r) => setTimeout(r, 5));
  };
  return { meter, call, arrived, pending, setClock: (t: number) => (clock = t) };
}

describe('the functions host meter', () => {
  test('overlapping requests bill one stretch, from the first in to the last out, rounded up to 100 ms', async () => {
    const { meter, call, arrived, pending, setClock } = await meteredServer();
    setClock(1000);
    const a = call();
    await arrived(1);
    setClock(1030);
    const b = call();
    await arrived(2);
    setClock(1150);
    pending[0]!();
    await a;
    setClock(1210);
    pending[1]!();
    await b;
    const w = meter.snapshot().worker!;
    expect(w.invocations).toBe(2);
    expect(w.busyMs).toBe(210);
    expect(w.billedMs).toBe(300);
  });

  test('separate requests bill separate stretches, each rounded up', async () => {
    const { meter, call, arrived, pending, setClock } = await meteredServer();
    for (const [start, end] of [
      [0, 10],
      [500, 510],
    ] as const) {
      setClock(start);
      const r = call();
      await arrived(pending.length + 1);
      setClock(end);
      pending.at(-1)!();
      await r;
    }
    expect(meter.snapshot().worker).toMatchObject({ invocations: 2, busyMs: 20, billedMs: 200 });
  });

  test('instances add up, and two readings give what happened between them', () => {
    const one = { worker: { invocations: 3, billedMs: 300, busyMs: 250, cpuMs: 40 } };
    const two = {
      worker: { invocations: 2, billedMs: 100, busyMs: 90, cpuMs: 10 },
      tick: { invocations: 1, billedMs: 100, busyMs: 5, cpuMs: 2 },
    };
    const sum = sumUsage([one, two]);
    expect(sum.worker).toMatchObject({ invocations: 5, billedMs: 400, busyMs: 340, cpuMs: 50 });
    expect(usageSince(sum, one).worker).toMatchObject(two.worker);
    expect(usageSince(sum, one).tick).toMatchObject(two.tick);
  });
});
