import cluster, { type Worker } from 'node:cluster';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { sendJsonError, servesHost } from './front-checks.js';
import { type FrontFault, withFault } from './front-faults.js';
import { cachedToken, createLocalFront, LOCAL_DEVELOPER, type LocalFront, localIdToken } from './identity.js';
import {
  createInstanceMeter,
  createUsageCollector,
  reportUsage,
  serveFunctionsUsage,
} from './usage/functions-meter.js';
import { SlotGate, type WorkerCapacity, workerCapacityFromEnv, workerSlots } from './worker-slots.js';

/**
 * Serves the registered functions with the Functions Framework, each on its own port, in processes
 * of their own: `FANOUT_INSTANCES` (default 2) instances share every port, as Cloud Functions runs
 * several instances of a busy function. They do not share a process with the emulators.
 *
 * `--ports '{"ingest":8580,"worker":8581,"tick":8582,"intake":8583}'`; prints
 * `functions: {"ingest": "http://127.0.0.1:8580/", ...}` once every instance listens; SIGTERM stops
 * it. The environment (emulator hosts, WORKER_URL, …) comes from the parent, the local stack.
 *
 * Like Cloud Run, the worker serves at most `FANOUT_INSTANCES` × `FANOUT_WORKER_CONCURRENCY` (default
 * 200) deliveries at once; one more waits up to `FANOUT_WORKER_PENDING_MS` (10 s) for a slot, then
 * gets 429 (worker-slots.ts). The local stack sizes the queues' concurrent dispatches to fit.
 *
 * Like Cloud Run, it starts a new instance when one dies (a line on stderr says so), so killing an
 * instance mid-run is a test of the system, not the end of the local cloud: SIGUSR2 to this process
 * SIGKILLs its oldest instance. Like Cloud Run's front, it can refuse deliveries before they reach
 * the worker (429 at max instances, 503, 401/403): see front-faults.ts; and it admits to ingest only
 * requests whose ID token verifies (identity.ts). Every port answers only to its own loopback names
 * in `Host` (front-checks.ts: no DNS rebinding), with 403 before the function sees anything.
 */
const ports = (() => {
  const i = process.argv.indexOf('--ports');
  return JSON.parse(i > 0 ? (process.argv[i + 1] ?? '{}') : '{}') as Record<string, number>;
})();

/** One instance: every registered function on its port. Resolves with the URLs it serves. */
async function serveInstance(): Promise<Record<string, string>> {
  if (process.env.FANOUT_SOURCE_MAPS !== '1') {
    // Source-mapped stack traces cost a lot where clients capture a stack on every call; the local
    // cloud runs faster without them. FANOUT_SOURCE_MAPS=1 brings them back for debugging.
    process.setSourceMapsEnabled(false);
  }
  await import('../../functions/index.js');
  const { getFunction, getTestServer } = await import('@google-cloud/functions-framework/testing');
  const servers: Server[] = [];
  const urls: Record<string, string> = {};
  // Benchmarks only: what each function is billed for (usage/functions-meter.ts).
  const usage = process.env.FANOUT_HOST_USAGE_PORT ? createInstanceMeter() : undefined;
  for (const [name, port] of Object.entries(ports)) {
    if (!getFunction(name)) continue;
    const server = getTestServer(name);
    if (name === 'ingest') {
      // Cloud Run's front: ingest is private (see identity.ts); the framework sees only what passes.
      const front = await ingestFront(port);
      const app = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
      server.removeAllListeners('request');
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        front.admit(req).then(
          (verdict) => {
            if (!verdict.pass) return sendJsonError(res, verdict.status, 'UNAUTHENTICATED', verdict.message);
            for (const listener of app) listener.call(server, req, res);
          },
          () => sendJsonError(res, 503, 'UNAVAILABLE', 'The local front could not check the ID token.'),
        );
      });
    }
    if (name === 'worker') {
      // Cloud Run's front: faults injected by tests refuse deliveries before the worker sees them.
      const { createWorkerFront } = await import('./front-faults.js');
      const front = createWorkerFront((frontFault) => process.send?.({ frontFault }));
      process.on('message', (m: { frontFaults?: FrontFault[] }) => {
        if (m.frontFaults) front.replace(m.frontFaults);
      });
      const app = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
      server.removeAllListeners('request');
      // Past the front, a delivery takes one of the worker's slots (max instances × concurrency,
      // worker-slots.ts) or waits for one, then 429s as Cloud Run does.
      const slots = slotClient();
      server.on('request', (req: IncomingMessage, res: ServerResponse) =>
        front.handle(req, res, () => {
          void slots.acquire().then((granted) => {
            if (!granted) {
              sendJsonError(res, 429, 'RESOURCE_EXHAUSTED', 'Rejected: no available instance.');
              return;
            }
            res.once('close', slots.release);
            for (const listener of app) listener.call(server, req, res);
          });
        }),
      );
    }
    onlyOwnHost(server, port);
    usage?.meter(server, name);
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(port, '127.0.0.1', () => ok());
    });
    servers.push(server);
    urls[name] = `http://127.0.0.1:${port}/`;
  }
  if (usage) reportUsage(usage);
  process.on('SIGTERM', () => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    process.exit(0);
  });
  return urls;
}

/** An instance's side of the worker's slots: the primary's gate answers each request (worker-slots.ts). */
function slotClient() {
  let next = 0;
  const waiting = new Map<number, (granted: boolean) => void>();
  process.on('message', (m: { slot?: { id: number; granted: boolean } }) => {
    if (!m.slot) return;
    waiting.get(m.slot.id)?.(m.slot.granted);
    waiting.delete(m.slot.id);
  });
  return {
    acquire: (): Promise<boolean> => {
      if (!process.send) return Promise.resolve(true);
      const id = next++;
      return new Promise((granted) => {
        waiting.set(id, granted);
        process.send!({ slotAcquire: id });
      });
    },
    release: (): void => {
      process.send?.({ slotRelease: true });
    },
  };
}

/** The front of ingest: its audiences and the local issuer, from the environment the stack set. */
async function ingestFront(port: number): Promise<LocalFront> {
  const { loadConfig } = await import('../../functions/platform/config.js');
  const { createIdTokenVerifier } = await import('../../functions/platform/id-token.js');
  const { identity } = loadConfig(process.env);
  const issuerUrl = identity.extraIssuers[0];
  if (!issuerUrl) throw new Error('FANOUT_ID_ISSUER is not set: start the functions through the local stack');
  const verifier = createIdTokenVerifier({
    audiences: identity.audiences,
    extraIssuers: identity.extraIssuers,
    ...(identity.certsUrl ? { certsUrl: identity.certsUrl } : {}),
  });
  const audience = `http://127.0.0.1:${port}`;
  return createLocalFront(
    verifier,
    cachedToken(() => localIdToken(LOCAL_DEVELOPER, { issuerUrl, audience })),
  );
}

/** Requests whose `Host` is not one of this port's loopback names are refused before any listener. */
function onlyOwnHost(server: Server, port: number): void {
  const listeners = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!servesHost(req.headers.host, port)) {
      sendJsonError(res, 403, 'PERMISSION_DENIED', 'This host name is not served here.');
      return;
    }
    for (const listener of listeners) listener.call(server, req, res);
  });
}

/** Back-off before replacing an instance that died young: doubles per crash in a row, capped. */
const CRASH_BACKOFF_MS = { first: 250, max: 4000 };
/** An instance that dies before it listens, or sooner than this after, counts as crashing. */
const HEALTHY_AFTER_MS = 1000;

/** What an instance tells the primary: it listens, a front fault, or a worker slot taken or given back. */
interface Message {
  ready?: Record<string, string>;
  frontFault?: FrontFault;
  slotAcquire?: number;
  slotRelease?: boolean;
}

interface Instance {
  worker: Worker;
  pid: number;
  listeningAt?: number;
  /** Killed on SIGUSR2: replaced at once, never counted as a crash. */
  killedOnRequest: boolean;
}

/**
 * The cluster primary, a small Cloud Run: it keeps `count` instances, starts a new one whenever one
 * exits unless the host is stopping (after a back-off if instances keep dying young), and on
 * SIGUSR2 kills the oldest instance with SIGKILL so tests can take an instance away mid-run. Its
 * process title (`ps -p PID -o args=`) says how many instances listen, for tests and operators.
 */
async function supervise(capacity: WorkerCapacity): Promise<void> {
  const count = capacity.instances;
  const gate = new SlotGate(workerSlots(capacity), capacity.pendingMs);
  const instances: Instance[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let stopping = false;
  let crashes = 0;
  /** Faults of the worker's front, shared with every instance (see front-faults.ts). */
  let frontFaults: FrontFault[] = [];
  const log = (line: string) => process.stderr.write(`functions: ${line}\n`);
  const usage = createUsageCollector();
  if (process.env.FANOUT_HOST_USAGE_PORT) {
    serveFunctionsUsage(Number(process.env.FANOUT_HOST_USAGE_PORT), () =>
      usage.collect(
        instances
          .filter((i) => i.worker.isConnected())
          .map((i) => ({ pid: i.pid, send: (m) => i.worker.send(m) })),
      ),
    );
  }
  const showState = () => {
    const listening = instances.filter((i) => i.listeningAt !== undefined).length;
    process.title = `functions-host: ${listening} of ${count} instances listening`;
  };

  // Until every instance has listened once, an instance that exits fails the host: one that cannot
  // start at all is a broken build (as a failed Cloud Run deploy), not something to retry forever.
  let startup: { ok: (urls: Record<string, string>) => void; fail: (err: Error) => void } | undefined;
  const ready = new Promise<Record<string, string>>((ok, fail) => {
    startup = { ok, fail };
  });

  const start = () => {
    const worker = cluster.fork();
    const instance: Instance = { worker, pid: worker.process.pid ?? 0, killedOnRequest: false };
    instances.push(instance);
    showState();
    const owner = String(worker.id);
    worker.on('message', (m: Message) => {
      if (usage.onMessage(instance.pid, m)) return;
      if (m.slotAcquire !== undefined) {
        const id = m.slotAcquire;
        gate.acquire(owner, (granted) => {
          if (worker.isConnected()) worker.send({ slot: { id, granted } });
        });
        return;
      }
      if (m.slotRelease) {
        gate.release(owner);
        return;
      }
      if (m.frontFault) {
        frontFaults = withFault(frontFaults, m.frontFault, Date.now());
        for (const i of instances) if (i.worker.isConnected()) i.worker.send({ frontFaults });
        return;
      }
      if (!m.ready) return;
      if (frontFaults.length > 0) worker.send({ frontFaults });
      instance.listeningAt = Date.now();
      showState();
      // An instance that stays up ends a crash streak.
      setTimeout(() => {
        if (instances.includes(instance)) crashes = 0;
      }, HEALTHY_AFTER_MS).unref();
      if (startup && instances.every((i) => i.listeningAt !== undefined)) {
        startup.ok(m.ready);
        startup = undefined;
      }
    });
    worker.once('exit', (code, signal) => {
      gate.dropOwner(owner);
      instances.splice(instances.indexOf(instance), 1);
      showState();
      if (stopping) return;
      const how = signal ? `signal ${signal}` : `code ${code}`;
      if (startup) {
        startup.fail(new Error(`a functions instance exited with ${how} before it listened`));
        return;
      }
      const young =
        instance.listeningAt === undefined || Date.now() - instance.listeningAt < HEALTHY_AFTER_MS;
      const crashed = young && !instance.killedOnRequest;
      if (crashed) crashes += 1;
      const delay = crashed ? Math.min(CRASH_BACKOFF_MS.max, CRASH_BACKOFF_MS.first * 2 ** (crashes - 1)) : 0;
      log(`instance ${instance.pid} exited (${how}); starting another${delay ? ` in ${delay} ms` : ''}`);
      // Through a timer even without a back-off: a Ctrl-C reaches the instances and this process
      // together, and the stop it causes must win over the restart.
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!stopping) start();
      }, delay);
      timers.add(timer);
    });
  };

  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const timer of timers) clearTimeout(timer);
    for (const { worker } of instances) worker.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2000).unref();
    cluster.disconnect(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The parent going away (even by SIGKILL) closes our stdin: stop with it, leave no orphan.
  process.stdin.on('end', stop);
  process.stdin.resume();
  process.on('SIGUSR2', () => {
    const victim = instances.find((i) => !i.killedOnRequest);
    if (stopping || startup || !victim) {
      log('SIGUSR2: no instance to kill right now');
      return;
    }
    victim.killedOnRequest = true;
    log(`killing instance ${victim.pid} on request (SIGUSR2)`);
    victim.worker.process.kill('SIGKILL');
  });

  // Instances accept from the shared listening sockets themselves (Node's default on Linux is
  // round-robin by the primary): a connection the primary has handed to an instance that dies
  // before taking it is never closed, and its client (a task dispatch with a 10-minute deadline)
  // hangs. With shared sockets a connection waits in the kernel's queue for a live instance, and
  // one an instance had accepted is reset with it. NODE_CLUSTER_SCHED_POLICY=rr brings back the default.
  if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let i = 0; i < count; i++) start();
  const urls = await ready;
  process.stdout.write(`functions: ${JSON.stringify(urls)}\n`);
}

async function main(): Promise<void> {
  if (cluster.isWorker) {
    const urls = await serveInstance();
    process.send?.({ ready: urls });
    return;
  }
  await supervise(workerCapacityFromEnv(process.env));
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
