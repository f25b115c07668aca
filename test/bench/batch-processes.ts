import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT } from '../../infra/local/stack.js';

/**
 * Child processes of the Batch API benchmarks: the emulators run apart from the process measured,
 * so their memory and CPU are not counted against the code under test.
 */

/** A child started by `spawnReady`, with what it printed after `ready: `. */
export interface ReadyChild<T> {
  child: ChildProcess;
  info: T;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Runs a TypeScript entry point under tsx and resolves with the JSON of its `ready: {json}` line. */
export async function spawnReady<T>(script: string, args: string[]): Promise<ReadyChild<T>> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, script), ...args], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // A parent that dies without cleaning up must not leave the emulator behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const lines = createInterface({ input: child.stdout! });
  const info = await new Promise<T>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before it was ready`)));
    lines.on('line', (line) => {
      if (line.startsWith('ready: ')) resolve(JSON.parse(line.slice('ready: '.length)) as T);
    });
  });
  return {
    child,
    info,
    async stop() {
      process.removeListener('exit', killOnExit);
      await stopChild(child);
    },
  };
}

/** The local Gemini stand-in as a process, its files under `dataDir`. */
export function startStandIn(dataDir: string): Promise<ReadyChild<{ url: string }>> {
  return spawnReady('infra/local/gemini/main.ts', ['--port', '0', '--data-dir', dataDir]);
}

/** The Cloud Storage emulator as a process, its blobs under `dataDir`. */
export function startStorage(dataDir: string, projectId: string): Promise<ReadyChild<{ url: string }>> {
  return spawnReady('infra/local/storage/main.ts', [
    '--port',
    '0',
    '--data-dir',
    dataDir,
    '--project',
    projectId,
  ]);
}

/**
 * Runs a measured script under tsx (optionally with `--cpu-prof` into `profileDir`) and resolves
 * with the JSON of the last line it printed; its stderr passes through.
 */
export async function runMeasured<T>(
  script: string,
  input: unknown,
  env: Record<string, string>,
  profileDir?: string,
): Promise<T> {
  const child = spawn(
    process.execPath,
    [
      ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
      '--import',
      'tsx',
      join(PROJECT_ROOT, script),
      JSON.stringify(input),
    ],
    { cwd: PROJECT_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let last = '';
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.trim() !== '') last = line;
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  process.removeListener('exit', killOnExit);
  if (code !== 0) throw new Error(`${script} exited with ${code}`);
  return JSON.parse(last) as T;
}
