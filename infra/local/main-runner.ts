/**
 * How each local emulator runs as a process of its own (`tsx infra/local/<name>/main.ts …`): start it,
 * print one `ready: {json}` line once it listens, stop cleanly on SIGINT/SIGTERM, and exit 1 with
 * one line on stderr when starting fails. The command-line flags are each emulator's own.
 */
export interface Running {
  /** What the `ready:` line carries (its address, at least). */
  ready: Record<string, unknown>;
  close(): Promise<void>;
}

export function runMain(name: string, start: (argv: string[]) => Promise<Running>): void {
  start(process.argv.slice(2)).then(
    (running) => {
      process.stdout.write(`ready: ${JSON.stringify(running.ready)}\n`);
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        running.close().then(
          () => process.exit(0),
          (error: unknown) => {
            process.stderr.write(`${name}: error while stopping: ${String(error)}\n`);
            process.exit(1);
          },
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (error: unknown) => {
      process.stderr.write(`${name}: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}

/** A numeric flag: undefined when absent, an error naming the flag when not a number. */
export function numberFlag(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`--${flag} must be a number, got "${raw}"`);
  return value;
}

/** A port flag (0: any free port). */
export function portFlag(raw: string | undefined, fallback: number): number {
  const port = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be a port number (0-65535), got "${raw}"`);
  return port;
}

/** `--profile ideal|strict`, the local cloud's two ways of modelling a service. */
export function profileFlag(raw: string | undefined): 'ideal' | 'strict' | undefined {
  if (raw !== undefined && raw !== 'ideal' && raw !== 'strict')
    throw new Error(`--profile must be ideal or strict, got "${raw}"`);
  return raw;
}
