import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { freePort, waitFor } from './ports.js';

/**
 * The real Firestore emulator that ships with the Google Cloud CLI, started from its jar directly:
 * gcloud's wrapper leaves the Java child behind when it is killed, the jar does not.
 */
export interface FirestoreEmulator {
  /** `127.0.0.1:PORT`, the value for `FIRESTORE_EMULATOR_HOST`. */
  readonly host: string;
  /** The emulator's JVM (for a benchmark's CPU readings). */
  readonly pid: number | undefined;
  /** Deletes every document of one project's default database. */
  reset(projectId: string): Promise<void>;
  stop(): Promise<void>;
}

export interface FirestoreEmulatorOptions {
  port?: number;
  /** Path to `cloud-firestore-emulator.jar`; found through the Google Cloud CLI when absent. */
  jar?: string;
  startTimeoutMs?: number;
}

const JAR_IN_SDK = join('platform', 'cloud-firestore-emulator', 'cloud-firestore-emulator.jar');

/** Finds the emulator jar: `FIRESTORE_EMULATOR_JAR`, else beside the `gcloud` on PATH, else `gcloud info`. */
export function findFirestoreJar(env: NodeJS.ProcessEnv = process.env): string {
  const candidates: string[] = [];
  if (env.FIRESTORE_EMULATOR_JAR) candidates.push(env.FIRESTORE_EMULATOR_JAR);
  try {
    const gcloud = execFileSync('sh', ['-c', 'command -v gcloud'], { encoding: 'utf8' }).trim();
    if (gcloud) candidates.push(join(dirname(dirname(realpathSync(gcloud))), JAR_IN_SDK));
    const root = execFileSync('gcloud', ['info', '--format=value(installation.sdk_root)'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (root) candidates.push(join(root, JAR_IN_SDK));
  } catch {
    // no gcloud on PATH: only the explicit jar can help, reported below
  }
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    throw new Error(
      'Firestore emulator not found: install the Google Cloud CLI with its emulator ' +
        '(`gcloud components install cloud-firestore-emulator`, or the Debian package ' +
        '`google-cloud-cli-firestore-emulator`) and Java 17, or set FIRESTORE_EMULATOR_JAR.',
    );
  }
  return found;
}

/** Starts the emulator on 127.0.0.1 and resolves once it answers. */
export async function startFirestoreEmulator(
  options: FirestoreEmulatorOptions = {},
): Promise<FirestoreEmulator> {
  const jar = options.jar ?? findFirestoreJar();
  const port = options.port ?? (await freePort());
  const host = `127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    'java',
    [
      '-Xms512m',
      '-XX:+UseParallelGC',
      '-cp',
      jar,
      'com.google.cloud.datastore.emulator.firestore.CloudFirestore',
      'start',
      '--host=127.0.0.1',
      `--port=${port}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => {
    exited = true;
  });
  // A parent that exits without calling stop() must not leave Java behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exitedPromise;
    clearTimeout(timer);
  };

  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`Firestore emulator exited during start:\n${output}`);
        const res = await fetch(`http://${host}/`);
        return res.ok;
      },
      options.startTimeoutMs ?? 30_000,
      'Firestore emulator',
    );
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    host,
    pid: child.pid,
    async reset(projectId: string) {
      const res = await fetch(
        `http://${host}/emulator/v1/projects/${encodeURIComponent(projectId)}/databases/(default)/documents`,
        { method: 'DELETE' },
      );
      if (!res.ok) throw new Error(`Firestore emulator reset failed: ${res.status} ${await res.text()}`);
    },
    stop,
  };
}
