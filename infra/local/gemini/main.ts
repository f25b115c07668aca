import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { GeminiStandInConfigPatch } from './config.js';
import { startGeminiStandIn } from './server.js';

/** Command-line options of the stand-in process. */
interface MainOptions {
  port: number;
  host: string;
  dataDir?: string;
  config: GeminiStandInConfigPatch;
}

/**
 * Parses `--port N --host H --data-dir D --config JSON|@file.json`. The config is the same partial
 * configuration `POST /__standin/config` takes.
 */
async function parseMainArgs(argv: string[]): Promise<MainOptions> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '8790' },
      host: { type: 'string', default: '127.0.0.1' },
      'data-dir': { type: 'string' },
      config: { type: 'string' },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0-65535, got ${values.port}`);
  let config: GeminiStandInConfigPatch = {};
  if (values.config) {
    const text = values.config.startsWith('@')
      ? await readFile(values.config.slice(1), 'utf8')
      : values.config;
    config = JSON.parse(text) as GeminiStandInConfigPatch;
  }
  return { port, host: values.host, config, ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}) };
}

async function main(): Promise<void> {
  const options = await parseMainArgs(process.argv.slice(2));
  const standIn = await startGeminiStandIn({
    ...options.config,
    port: options.port,
    host: options.host,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
  });
  process.stdout.write(`ready: ${JSON.stringify({ url: standIn.url, port: standIn.port })}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    standIn.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`gemini stand-in: error while stopping: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`gemini stand-in: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
