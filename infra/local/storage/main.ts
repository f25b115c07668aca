import { parseArgs } from 'node:util';
import { numberFlag, portFlag, profileFlag, runMain } from '../main-runner.js';
import { type Subscription, startStorageEmulator } from './server.js';

/**
 * Runs the Cloud Storage emulator as a process:
 *   tsx infra/local/storage/main.ts [--port 9199] [--host 127.0.0.1] [--data-dir DIR]
 *     [--project ID] [--subscribe URL]... [--subscribe-bucket BUCKET] [--profile ideal|strict]
 *     [--event-time-scale 0.01] [--seed 7]
 */
runMain('storage emulator', async (argv) => {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      project: { type: 'string' },
      subscribe: { type: 'string', multiple: true },
      'subscribe-bucket': { type: 'string' },
      profile: { type: 'string' },
      'event-time-scale': { type: 'string' },
      seed: { type: 'string' },
    },
  });
  const profile = profileFlag(values.profile);
  const bucket = values['subscribe-bucket'];
  const subscriptions: Subscription[] = (values.subscribe ?? []).map((url) => ({
    url,
    ...(bucket !== undefined ? { bucket } : {}),
  }));
  const emulator = await startStorageEmulator({
    port: portFlag(values.port, 0),
    ...(values.host !== undefined ? { host: values.host } : {}),
    ...(values['data-dir'] !== undefined ? { dataDir: values['data-dir'] } : {}),
    ...(values.project !== undefined ? { projectId: values.project } : {}),
    ...(profile !== undefined ? { profile } : {}),
    events: {
      timeScale: numberFlag('event-time-scale', values['event-time-scale']),
      seed: numberFlag('seed', values.seed),
    },
    subscriptions,
  });
  return {
    ready: {
      url: emulator.url,
      port: emulator.port,
      dataDir: emulator.dataDir,
      profile: emulator.settings.profile,
    },
    close: () => emulator.close(),
  };
});
