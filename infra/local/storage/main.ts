import { parseArgs } from 'node:util';
import { type StorageProfile, type Subscription, startStorageEmulator } from './server.js';

/**
 * Runs the Cloud Storage emulator as a process:
 *   tsx infra/local/storage/main.ts [--port 9199] [--host 127.0.0.1] [--data-dir DIR]
 *     [--project ID] [--subscribe URL]... [--subscribe-bucket BUCKET] [--profile ideal|strict]
 *     [--event-time-scale 0.01] [--seed 7]
 * Prints one `ready: {json}` line once listening; stops cleanly on SIGINT/SIGTERM.
 */
async function main(argv: string[]): Promise<void> {
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
  const profile = values.profile;
  if (profile !== undefined && profile !== 'ideal' && profile !== 'strict')
    throw new Error(`--profile must be ideal or strict, got ${profile}`);
  const number = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const parsed = Number(value);
    if (!Number.isFinite(parsed)) throw new Error(`--${flag} must be a number, got ${value}`);
    return parsed;
  };
  const timeScale = number('event-time-scale', values['event-time-scale']);
  const seed = number('seed', values.seed);
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be a port number, got ${values.port}`);
  const bucket = values['subscribe-bucket'];
  const subscriptions: Subscription[] = (values.subscribe ?? []).map((url) => ({
    url,
    ...(bucket !== undefined ? { bucket } : {}),
  }));
  const emulator = await startStorageEmulator({
    port,
    ...(values.host !== undefined ? { host: values.host } : {}),
    ...(values['data-dir'] !== undefined ? { dataDir: values['data-dir'] } : {}),
    ...(values.project !== undefined ? { projectId: values.project } : {}),
    ...(profile !== undefined ? { profile: profile as StorageProfile } : {}),
    events: { timeScale, seed },
    subscriptions,
  });
  process.stdout.write(
    `ready: ${JSON.stringify({ url: emulator.url, port: emulator.port, dataDir: emulator.dataDir, profile: emulator.settings.profile })}\n`,
  );
  const stop = () => {
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
