import type { Server } from 'node:http';

/**
 * Serves the registered functions with the Functions Framework, each on its own port, in a process
 * of their own (as on Cloud Functions, they do not share a process with the emulators: the
 * framework's per-request `domain` turns on async hooks for every promise in the process).
 *
 * `--ports '{"ingest":8580,"worker":8581,"batch":8582,"intake":8583}'`; prints
 * `functions: {"ingest": "http://127.0.0.1:8580/", ...}` once every function listens; SIGTERM stops it.
 * The environment (emulator hosts, WORKER_URL, …) comes from the parent, the local stack.
 */
async function main(): Promise<void> {
  const i = process.argv.indexOf('--ports');
  const ports = JSON.parse(i > 0 ? (process.argv[i + 1] ?? '{}') : '{}') as Record<string, number>;
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
  process.stdout.write(`functions: ${JSON.stringify(urls)}\n`);
  const stop = () => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    process.exit(0);
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
