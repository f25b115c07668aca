import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { portFlag, runMain } from '../main-runner.js';
import type { GeminiStandInConfigPatch } from './config.js';
import { startGeminiStandIn } from './server.js';

/**
 * Runs the Gemini stand-in as a process:
 *   tsx infra/local/gemini/main.ts [--port 8790] [--host 127.0.0.1] [--data-dir D] [--config JSON|@file.json]
 * The config is the same partial configuration `POST /__standin/config` takes.
 */
runMain('gemini stand-in', async (argv) => {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      'data-dir': { type: 'string' },
      config: { type: 'string' },
    },
  });
  let config: GeminiStandInConfigPatch = {};
  if (values.config) {
    const text = values.config.startsWith('@')
      ? await readFile(values.config.slice(1), 'utf8')
      : values.config;
    config = JSON.parse(text) as GeminiStandInConfigPatch;
  }
  const standIn = await startGeminiStandIn({
    ...config,
    port: portFlag(values.port, 8790),
    host: values.host,
    ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
  });
  return { ready: { url: standIn.url, port: standIn.port }, close: () => standIn.close() };
});
