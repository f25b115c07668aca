/**
 * Drives the `gemini-fanout` command as a user would: a child process of its bin (cli/bin.js), its
 * output and exit code; in a pseudo-terminal through util-linux `script` for the TTY case; and an
 * HTTP proxy in front of the jobs API that drops an event stream mid-way.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { symlink } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const BIN = resolve(ROOT, 'cli', 'bin.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment a user's shell would give it, without a jobs API URL of the outer one. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, METADATA_SERVER_DETECTION: 'none', ...extra };
  delete env.FANOUT_URL;
  return env;
}

export interface Started {
  child: ChildProcess;
  /** stdout so far. */
  readonly stdout: string;
  /** Resolves when stdout matches. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  done: Promise<CliRun>;
}

/** Starts `gemini-fanout ARGS` (stdout and stderr are pipes, so not a TTY). */
export function startCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Started {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers: Array<() => void> = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of [...watchers]) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const done = new Promise<CliRun>((ok, fail) => {
    child.once('error', fail);
    child.once('close', (code) => ok({ code, stdout, stderr }));
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    waitForStdout(pattern, timeoutMs = 20_000) {
      return new Promise((ok, fail) => {
        const check = () => {
          const m = stdout.match(pattern);
          if (!m) return;
          clearTimeout(timer);
          watchers.splice(watchers.indexOf(check), 1);
          ok(m);
        };
        const timer = setTimeout(() => {
          watchers.splice(watchers.indexOf(check), 1);
          fail(new Error(`no ${pattern} on stdout after ${timeoutMs} ms: ${stdout}\nstderr: ${stderr}`));
        }, timeoutMs);
        watchers.push(check);
        check();
      });
    },
    done,
  };
}

/** Runs `gemini-fanout ARGS` to its end. */
export function cli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliRun> {
  return startCli(args, options).done;
}

/** Single-quotes a word for sh. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Runs `gemini-fanout ARGS` in a pseudo-terminal 160 columns wide (util-linux `script`), as in a
 * user's terminal; returns what the terminal received and the command's exit code.
 */
export function cliInTerminal(args: string[]): Promise<{ code: number | null; output: string }> {
  const command = `stty cols 160 rows 40; exec ${[process.execPath, BIN, ...args].map(shellQuote).join(' ')}`;
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    cwd: ROOT,
    env: { ...cliEnv(), SHELL: '/bin/sh', TERM: 'xterm-256color' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });
  return new Promise((ok, fail) => {
    child.once('error', fail);
    child.once('close', (code) => ok({ code, output }));
  });
}

/** Whether util-linux `script` is here to give the command a pseudo-terminal. */
export async function haveScript(): Promise<boolean> {
  return new Promise((ok) => {
    const child = spawn('script', ['--version'], { stdio: 'ignore' });
    child.once('error', () => ok(false));
    child.once('close', (code) => ok(code === 0));
  });
}

export interface DroppingProxy {
  url: string;
  /** The `Last-Event-ID` each request for an event stream carried (undefined: none). */
  eventRequests: Array<string | undefined>;
  /** The id of the last complete event passed on before the drop. */
  lastIdBeforeDrop: string | undefined;
  close(): Promise<void>;
}

/**
 * A proxy to `target` that passes everything on, except that the first event stream it carries is
 * cut after its first complete `result` event and half of the next chunk, as a load balancer or a
 * lost network might; later streams pass whole.
 */
export async function droppingProxy(target: string): Promise<DroppingProxy> {
  const upstream = new URL(target);
  const state: DroppingProxy = {
    url: '',
    eventRequests: [],
    lastIdBeforeDrop: undefined,
    close: async () => undefined,
  };
  let dropped = false;
  const server: Server = createServer((req, res) => {
    const isEvents = /\/events$/.test(req.url ?? '');
    if (isEvents) state.eventRequests.push(req.headers['last-event-id'] as string | undefined);
    const cut = isEvents && !dropped;
    if (cut) dropped = true;
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        // As a reverse proxy does: the upstream's own Host (the local cloud serves only its own names).
        headers: { ...req.headers, host: upstream.host },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (!cut) {
          up.pipe(res);
          return;
        }
        let seen = '';
        let gone = false;
        up.setEncoding('utf8').on('data', (chunk: string) => {
          if (gone) return;
          seen += chunk;
          const end = seen.indexOf('\n\n', seen.indexOf('event: result'));
          if (seen.indexOf('event: result') < 0 || end < 0) {
            res.write(chunk);
            return;
          }
          // Everything up to the end of the first result event, then the start of what follows.
          const before = seen.length - chunk.length;
          const whole = seen.slice(0, end + 2);
          const torn = seen.slice(end + 2, end + 2 + 12);
          res.write(`${whole.slice(before)}${torn}`);
          state.lastIdBeforeDrop = /id: (\S+)\nevent: result/.exec(whole)?.[1];
          gone = true;
          up.destroy();
          // A moment for the client to take in what it got, as a connection lost later would.
          setTimeout(() => res.socket?.destroy(), 1000);
        });
      },
    );
    out.on('error', () => res.socket?.destroy());
    req.pipe(out);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    });
  return state;
}

/** A loopback URL where nothing listens. */
export async function closedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((ok) => server.close(() => ok()));
  return `http://127.0.0.1:${port}`;
}

/** Runs one shell command line with bash, as a user's terminal would (its output and exit code). */
export function shell(command: string, options: { env: NodeJS.ProcessEnv; cwd: string }): Promise<CliRun> {
  const child = spawn('bash', ['-c', command], { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return new Promise((ok, fail) => {
    child.once('error', fail);
    child.once('close', (code) => ok({ code, stdout, stderr }));
  });
}

/**
 * A directory that looks like the checkout to `npx gemini-fanout` (links to package.json,
 * node_modules, cli/ and examples/), so a README command runs as from the repository's root while
 * the files it writes (`--out results.jsonl`) land in the directory, not in the repository.
 */
export async function checkoutLookalike(dir: string): Promise<string> {
  for (const entry of ['package.json', 'node_modules', 'cli', 'examples']) {
    await symlink(resolve(ROOT, entry), resolve(dir, entry));
  }
  return dir;
}
