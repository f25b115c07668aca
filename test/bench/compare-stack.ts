import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT, type StackInfo } from '../../infra/local/stack.js';

/**
 * A benchmark's folders: its scratch `.local/NAME` (logs, quick runs) and where its results go
 * (`bench/results` only for a run at every default), with its quotas file written in the scratch.
 */
export function benchFolders(
  name: string,
  isDefault: boolean,
  quotas: unknown,
): { scratch: string; outDir: string; quotasFile: string } {
  const scratch = join(PROJECT_ROOT, '.local', name);
  const outDir = isDefault ? join(PROJECT_ROOT, 'bench', 'results') : scratch;
  mkdirSync(scratch, { recursive: true });
  mkdirSync(outDir, { recursive: true });
  const quotasFile = join(scratch, 'quotas.json');
  writeFileSync(quotasFile, `${JSON.stringify(quotas, null, 2)}\n`);
  return { scratch, outDir, quotasFile };
}

/**
 * The local cloud of a benchmark, in a child process: booted with a quotas file and a profile
 * (strict unless told), its `ready:` line read, its log lines written to `logFile` (they must be
 * read, or the stack blocks on a full pipe) and handed to `onLine` for a benchmark that measures
 * from them. Also the CPU time of a process tree, read from /proc.
 */
export interface ComparisonStack {
  info: StackInfo;
  stop(): Promise<void>;
}

export async function bootStack(
  quotasFile: string,
  logFile: string,
  options: {
    profile?: 'ideal' | 'strict';
    onLine?: (line: string) => void;
    /** More environment for the local cloud (e.g. the worker's concurrency). */
    env?: NodeJS.ProcessEnv;
    /** How often the local Cloud Scheduler calls tick (the stack's default when absent: 10 s). */
    tickEveryMs?: number;
  } = {},
): Promise<ComparisonStack> {
  const log = createWriteStream(logFile);
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(PROJECT_ROOT, 'infra', 'local', 'stack.ts'),
      '--port-base',
      '0',
      '--quotas',
      quotasFile,
      '--profile',
      options.profile ?? 'strict',
      ...(options.tickEveryMs !== undefined ? ['--tick-every-ms', String(options.tickEveryMs)] : []),
    ],
    {
      cwd: PROJECT_ROOT,
      // Every run sends the same prompts: the response cache would answer all but the first.
      env: { ...process.env, LOG_LEVEL: 'info', RESPONSE_CACHE_TTL_HOURS: '0', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stderr!.pipe(log, { end: false });
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const lines = createInterface({ input: child.stdout! });
  const info = await new Promise<StackInfo>((ok, fail) => {
    child.once('exit', (code) => fail(new Error(`the local cloud exited with ${code}; see ${logFile}`)));
    lines.on('line', (line) => {
      if (line.startsWith('ready: ')) ok(JSON.parse(line.slice('ready: '.length)) as StackInfo);
      else {
        options.onLine?.(line);
        log.write(`${line}\n`);
      }
    });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  return {
    info,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      log.end();
    },
  };
}

const TICKS_PER_SECOND = 100;

/** utime + stime (and, with `reaped`, cutime + cstime) of one process, in clock ticks; 0 if it is gone. */
function processTicks(pid: number, reaped: boolean): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const at = (field: number) => Number(fields[field - 3]);
    return at(14) + at(15) + (reaped ? at(16) + at(17) : 0);
  } catch {
    return 0;
  }
}

/** The children of `pid` (every thread's list). */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/**
 * CPU seconds (user + system) used so far by `pid` and every descendant, those already reaped
 * included (Linux /proc; the clock tick is 100 Hz there). Differences of two readings give the
 * CPU a run cost.
 */
export function treeCpuSeconds(pid: number): number {
  let ticks = processTicks(pid, true);
  const pending = childrenOf(pid);
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    ticks += processTicks(next, true);
    pending.push(...childrenOf(next));
  }
  return ticks / TICKS_PER_SECOND;
}

/**
 * The head of a benchmark's results file: when, on what machine, the load average when it began
 * (`loadAtStart`) and now, and its seconds since `startedMs` (a `performance.now()` reading).
 */
export function resultsHead(startedMs: number, loadAtStart: number) {
  const round2 = (n: number) => Math.round(n * 100) / 100;
  return {
    date: new Date().toISOString(),
    machine: `${process.platform} ${process.arch}, node ${process.version}, ${cpus().length} cores`,
    loadAverage: { atStart: round2(loadAtStart), atEnd: round2(loadavg()[0]!) },
    elapsedS: Math.round((performance.now() - startedMs) / 1000),
  };
}
