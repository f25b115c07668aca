import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * What the functions host's instances count for the cost benchmark, as Cloud Run functions bill it:
 * per function, the requests that reached an instance (invocations), the instance time billed under
 * request-based billing (per instance, every stretch with at least one request in flight, rounded
 * up to 100 ms) and, for information, the CPU the instance really spent on them.
 *
 * CPU: one process serves every function here (in the cloud each has its own instances), so the
 * process's CPU (`process.cpuUsage`, read every 100 ms) is split among the functions with requests
 * in flight during that slice, by how many each had; a slice with none in flight is `idle`
 * (timers, client keep-alives). Instances report to the host's primary over IPC; the primary
 * answers `GET /usage` on `FANOUT_HOST_USAGE_PORT` when that is set (benchmarks only).
 */

/** One function's counts on one instance (or summed over instances). */
export interface FunctionMeter {
  invocations: number;
  /** Billed instance time: stretches with a request in flight, each rounded up to 100 ms. */
  billedMs: number;
  /** The same stretches unrounded. */
  busyMs: number;
  cpuMs: number;
  /** Requests in flight when read (a reading taken at rest should show none). */
  inFlight?: number;
}

/** Counts per function name; `idle` holds CPU spent with no request in flight. */
export type FunctionsUsage = Record<string, FunctionMeter>;

const GRANULARITY_MS = 100;
const CPU_SLICE_MS = 100;

const empty = (): FunctionMeter => ({ invocations: 0, billedMs: 0, busyMs: 0, cpuMs: 0 });

/** The meter of one instance process. */
export interface InstanceMeter {
  /** Wraps `server`'s request listeners so each request to `name` is counted and timed. */
  meter(server: Server, name: string): void;
  snapshot(): FunctionsUsage;
}

export function createInstanceMeter(now: () => number = () => performance.now()): InstanceMeter {
  const counts = new Map<string, FunctionMeter & { inFlight: number; since: number }>();
  const of = (name: string) => {
    let c = counts.get(name);
    if (!c) {
      c = { ...empty(), inFlight: 0, since: 0 };
      counts.set(name, c);
    }
    return c;
  };
  const idle = of('idle');
  let lastCpu = process.cpuUsage();
  const sample = () => {
    const cpu = process.cpuUsage(lastCpu);
    lastCpu = process.cpuUsage();
    const ms = (cpu.user + cpu.system) / 1000;
    const busy = [...counts.values()].filter((c) => c.inFlight > 0);
    const weight = busy.reduce((sum, c) => sum + c.inFlight, 0);
    if (weight === 0) idle.cpuMs += ms;
    for (const c of busy) c.cpuMs += (ms * c.inFlight) / weight;
  };
  setInterval(sample, CPU_SLICE_MS).unref();
  const begin = (name: string) => {
    const c = of(name);
    c.invocations += 1;
    if (c.inFlight === 0) c.since = now();
    c.inFlight += 1;
  };
  const end = (name: string) => {
    const c = of(name);
    c.inFlight -= 1;
    if (c.inFlight > 0) return;
    const ms = now() - c.since;
    c.busyMs += ms;
    c.billedMs += Math.ceil(ms / GRANULARITY_MS) * GRANULARITY_MS;
  };
  return {
    meter(server, name) {
      of(name);
      const listeners = server.listeners('request') as Array<
        (req: IncomingMessage, res: ServerResponse) => void
      >;
      server.removeAllListeners('request');
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        begin(name);
        res.once('close', () => end(name));
        for (const listener of listeners) listener.call(server, req, res);
      });
    },
    snapshot() {
      sample();
      const t = now();
      const out: FunctionsUsage = {};
      for (const [name, c] of counts) {
        // A stretch still open counts up to now, as the bill would if the run ended here.
        const open = c.inFlight > 0 ? t - c.since : 0;
        out[name] = {
          invocations: c.invocations,
          busyMs: c.busyMs + open,
          billedMs: c.billedMs + (open > 0 ? Math.ceil(open / GRANULARITY_MS) * GRANULARITY_MS : 0),
          cpuMs: c.cpuMs,
          inFlight: c.inFlight,
        };
      }
      return out;
    },
  };
}

/** Adds up instances' counts, function by function. */
export function sumUsage(parts: FunctionsUsage[]): FunctionsUsage {
  const out: FunctionsUsage = {};
  for (const part of parts) {
    for (const [name, m] of Object.entries(part)) {
      const t = out[name] ?? empty();
      out[name] = t;
      t.invocations += m.invocations;
      t.billedMs += m.billedMs;
      t.busyMs += m.busyMs;
      t.cpuMs += m.cpuMs;
      t.inFlight = (t.inFlight ?? 0) + (m.inFlight ?? 0);
    }
  }
  return out;
}

/** `after - before`, function by function (counts are cumulative). */
export function usageSince(after: FunctionsUsage, before: FunctionsUsage): FunctionsUsage {
  const out: FunctionsUsage = {};
  for (const [name, m] of Object.entries(after)) {
    const b = before[name] ?? empty();
    out[name] = {
      invocations: m.invocations - b.invocations,
      billedMs: m.billedMs - b.billedMs,
      busyMs: m.busyMs - b.busyMs,
      cpuMs: m.cpuMs - b.cpuMs,
      ...(m.inFlight !== undefined ? { inFlight: m.inFlight } : {}),
    };
  }
  return out;
}

/**
 * The primary's side: `GET /usage` on 127.0.0.1:`port` answers the sum over every instance that
 * ever ran (those that died keep their last report), asking the live ones for a fresh one first.
 */
export function serveFunctionsUsage(port: number, collect: () => Promise<FunctionsUsage>): Server {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/usage') {
      res.writeHead(404).end();
      return;
    }
    collect().then(
      (usage) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(usage)),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  server.listen(port, '127.0.0.1');
  server.unref();
  return server;
}

/** Reads the functions host's counts (`GET http://127.0.0.1:PORT/usage`). */
export async function readFunctionsUsage(port: number): Promise<FunctionsUsage> {
  const res = await fetch(`http://127.0.0.1:${port}/usage`);
  if (!res.ok) throw new Error(`the functions host's usage answered ${res.status}`);
  return (await res.json()) as FunctionsUsage;
}

/** Messages between an instance and the primary about usage. */
export type UsageMessage =
  | { usageQuery: number }
  | { usageReport: FunctionsUsage; usageQueryAnswered?: number };

/**
 * The instance's side of the IPC: reports every second and answers the primary's queries. Returns
 * nothing; runs for the life of the process.
 */
export function reportUsage(meter: InstanceMeter): void {
  const send = (answered?: number) =>
    process.send?.({
      usageReport: meter.snapshot(),
      ...(answered !== undefined ? { usageQueryAnswered: answered } : {}),
    } satisfies UsageMessage);
  setInterval(() => send(), 1000).unref();
  process.on('message', (m: Partial<{ usageQuery: number }>) => {
    if (typeof m?.usageQuery === 'number') send(m.usageQuery);
  });
}

/**
 * The primary's side of the IPC: keeps each instance's last report (by pid, dead ones included)
 * and, on `collect`, asks the live ones for a fresh report (waiting at most a second).
 */
export function createUsageCollector() {
  const reports = new Map<number, FunctionsUsage>();
  const waiting = new Map<number, Set<number>>();
  const waiters = new Map<number, () => void>();
  let next = 0;
  return {
    /** Feed every message an instance sends; returns true when it was about usage. */
    onMessage(pid: number, m: unknown): boolean {
      const msg = m as Partial<{ usageReport: FunctionsUsage; usageQueryAnswered: number }>;
      if (!msg?.usageReport) return false;
      reports.set(pid, msg.usageReport);
      const q = msg.usageQueryAnswered;
      if (q !== undefined && waiting.get(q)?.delete(pid) && waiting.get(q)!.size === 0) waiters.get(q)?.();
      return true;
    },
    async collect(live: Array<{ pid: number; send: (m: UsageMessage) => void }>): Promise<FunctionsUsage> {
      const q = next++;
      waiting.set(q, new Set(live.map((i) => i.pid)));
      await new Promise<void>((ok) => {
        const timer = setTimeout(ok, 1000);
        waiters.set(q, () => {
          clearTimeout(timer);
          ok();
        });
        for (const i of live) i.send({ usageQuery: q });
        if (live.length === 0) ok();
      });
      waiting.delete(q);
      waiters.delete(q);
      return sumUsage([...reports.values()]);
    },
  };
}
