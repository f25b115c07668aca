import { parseArgs } from 'node:util';
import { type CloudTasksProfile, startCloudTasksEmulator } from './server.js';

/**
 * Runs the Cloud Tasks emulator as a process:
 * `npx tsx infra/local/cloud-tasks/main.ts --port 8123 [--host 127.0.0.1] [--duplicate-share 0.1] [--seed 7]
 *  [--profile ideal|strict]`.
 * Prints one `ready: {"host": …}` line once it listens; stops cleanly on SIGINT/SIGTERM.
 */
async function main(argv: string[]): Promise<void> {
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
  const number = (flag: string, raw: string | undefined): number | undefined => {
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new Error(`--${flag} must be a number, got "${raw}"`);
    return value;
  };
  const port = number('port', values.port);
  const duplicateShare = number('duplicate-share', values['duplicate-share']);
  const seed = number('seed', values.seed);
  const dedupWindowMs = number('dedup-window-ms', values['dedup-window-ms']);
  const profile = values.profile;
  if (profile !== undefined && profile !== 'ideal' && profile !== 'strict')
    throw new Error(`--profile must be ideal or strict, got "${profile}"`);
  const emulator = await startCloudTasksEmulator({
    ...(port !== undefined ? { port } : {}),
    ...(values.host !== undefined ? { host: values.host } : {}),
    ...(duplicateShare !== undefined ? { duplicateShare } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(dedupWindowMs !== undefined ? { dedupWindowMs } : {}),
    ...(profile !== undefined ? { profile: profile as CloudTasksProfile } : {}),
  });
  process.stdout.write(`ready: ${JSON.stringify({ host: emulator.host, port: emulator.port })}\n`);
  const stop = (): void => {
    void emulator.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(
    `cloud-tasks emulator failed: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
