import cluster from 'node:cluster';
import type { Server } from 'node:http';

/**
 * Serves the registered functions with the Functions Framework, each on its own port, in processes
 * of their own: `FANOUT_INSTANCES` (default 2) instances share every port, as Cloud Functions runs
 * several instances of a busy function. They do not share a process with the emulators.
 *
 * `--ports '{"ingest":8580,"worker":8581,"batch":8582,"intake":8583}'`; prints
 * `functions: {"ingest": "http://127.0.0.1:8580/", ...}` once every instance listens; SIGTERM stops
 * it. The environment (emulator hosts, WORKER_URL, …) comes from the parent, the local stack.
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
  for (const [name, port] of Object.entries(ports)) {
    if (!getFunction(name)) continue;
    const server = getTestServer(name);
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(port, '127.0.0.1', () => ok());
    });
    servers.push(server);
    urls[name] = `http://127.0.0.1:${port}/`;
  }
  process.on('SIGTERM', () => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    process.exit(0);
  });
  return urls;
}

async function main(): Promise<void> {
  if (cluster.isWorker) {
    const urls = await serveInstance();
    process.send?.({ ready: urls });
    return;
  }
  const instances = Math.max(1, Number(process.env.FANOUT_INSTANCES ?? 2));
  const ready = await Promise.all(
    Array.from(
      { length: instances },
      () =>
        new Promise<Record<string, string>>((ok, fail) => {
          const worker = cluster.fork();
          worker.on('message', (m: { ready?: Record<string, string> }) => m.ready && ok(m.ready));
          worker.once('exit', (code) => fail(new Error(`a functions instance exited with ${code}`)));
        }),
    ),
  );
  process.stdout.write(`functions: ${JSON.stringify(ready[0])}\n`);
  const stop = () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2000).unref();
    cluster.disconnect(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The parent going away (even by SIGKILL) closes our stdin: stop with it, leave no orphan.
  process.stdin.on('end', stop);
  process.stdin.resume();
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
