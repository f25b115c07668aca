import { parseArgs } from 'node:util';
import { numberFlag, portFlag, profileFlag, runMain } from '../main-runner.js';
import { startCloudTasksEmulator } from './server.js';

/**
 * Runs the Cloud Tasks emulator as a process:
 *   tsx infra/local/cloud-tasks/main.ts --port 8123 [--host 127.0.0.1] [--duplicate-share 0.1] [--seed 7]
 *     [--dedup-window-ms N] [--profile ideal|strict]
 */
runMain('cloud-tasks emulator', async (argv) => {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'duplicate-share': { type: 'string' },
      seed: { type: 'string' },
      'dedup-window-ms': { type: 'string' },
      profile: { type: 'string' },
    },
  });
  const duplicateShare = numberFlag('duplicate-share', values['duplicate-share']);
  const seed = numberFlag('seed', values.seed);
  const dedupWindowMs = numberFlag('dedup-window-ms', values['dedup-window-ms']);
  const profile = profileFlag(values.profile);
  const emulator = await startCloudTasksEmulator({
    port: portFlag(values.port, 0),
    ...(values.host !== undefined ? { host: values.host } : {}),
    ...(duplicateShare !== undefined ? { duplicateShare } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(dedupWindowMs !== undefined ? { dedupWindowMs } : {}),
    ...(profile !== undefined ? { profile } : {}),
  });
  return { ready: { host: emulator.host, port: emulator.port }, close: () => emulator.close() };
});
