/**
 * What the contenders share that a user's script would not need: reading the settings, making or
 * reading the prompts, keeping the tally, and printing the one JSON line the comparison reads.
 * Each contender file holds only the pattern itself, written as a user would write it.
 *
 * Settings (a flag, else the environment variable):
 * - `--base-url` / `GEMINI_BASE_URL`: where the SDK sends requests (the local stand-in); required;
 * - `--model` / `GEMINI_MODEL` (default `gemini-2.5-flash`);
 * - `--n` / `N`: number of prompts (default 100; with `--prompts`, at most that many lines);
 * - `--prompt-chars` / `PROMPT_CHARS`: length of each generated prompt (default 60);
 * - `--prompts` / `PROMPTS_FILE`: a text file, one prompt a line, instead of generated prompts;
 * - `--rpm` / `RPM` and `--latency-s` / `LATENCY_S`: what the rule-of-thumb contender sizes itself by;
 * - `--cap-s` / `CAP_S`: the comparison's wall-time cap, counted from the first request like `wallMs`.
 *
 * The line: `{contender, model, n, finished, wallMs, succeeded, failed, pending, rateLimited429,
 * inOrder, cpuSeconds}`. `failed` counts prompts whose call failed for good (lost), `rateLimited429`
 * every 429 received (retried or not), `inOrder` whether every answer kept sits at its prompt's index,
 * `cpuSeconds` the process's user + system CPU (process.cpuUsage, start-up included). At the cap, or
 * on SIGTERM, it prints the line with `finished: false` and exits.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApiError } from '@google/genai';
import { echoes, makePrompts } from './prompts.js';

export interface ContenderSettings {
  baseUrl: string;
  model: string;
  prompts: string[];
  /** The quota's requests per minute and the expected latency: only the rule of thumb reads them. */
  rpm?: number;
  latencySeconds?: number;
  capSeconds?: number;
}

/** The answers by prompt index, and the tally of failures and 429s, that a contender fills in. */
export interface Tally {
  /** results[i] is the answer's text to prompts[i], as the seed's scripts keep them. */
  results: Array<string | undefined>;
  /** Prompts whose call failed for good. */
  failed: number;
  /** 429s received, retried or not. */
  rateLimited429: number;
}

/** Reads the settings from flags and environment; names what is missing or wrong. */
export function readSettings(argv: string[], env: NodeJS.ProcessEnv): ContenderSettings {
  const { values } = parseArgs({
    args: argv,
    options: {
      'base-url': { type: 'string' },
      model: { type: 'string' },
      n: { type: 'string' },
      'prompt-chars': { type: 'string' },
      prompts: { type: 'string' },
      rpm: { type: 'string' },
      'latency-s': { type: 'string' },
      'cap-s': { type: 'string' },
    },
  });
  const number = (flag: string, raw: string | undefined): number | undefined => {
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0)
      throw new Error(`--${flag} must be a positive number, not ${raw}`);
    return value;
  };
  const baseUrl = values['base-url'] ?? env.GEMINI_BASE_URL;
  if (!baseUrl) throw new Error('--base-url (or GEMINI_BASE_URL) is required: the stand-in to call');
  const n = number('n', values.n ?? env.N);
  const file = values.prompts ?? env.PROMPTS_FILE;
  const prompts = file
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .slice(0, n)
    : makePrompts(
        Math.floor(n ?? 100),
        Math.floor(number('prompt-chars', values['prompt-chars'] ?? env.PROMPT_CHARS) ?? 60),
      );
  const rpm = number('rpm', values.rpm ?? env.RPM);
  const latencySeconds = number('latency-s', values['latency-s'] ?? env.LATENCY_S);
  const capSeconds = number('cap-s', values['cap-s'] ?? env.CAP_S);
  return {
    baseUrl,
    model: values.model ?? env.GEMINI_MODEL ?? 'gemini-2.5-flash',
    prompts,
    ...(rpm !== undefined ? { rpm } : {}),
    ...(latencySeconds !== undefined ? { latencySeconds } : {}),
    ...(capSeconds !== undefined ? { capSeconds } : {}),
  };
}

/** Whether the SDK's error is a 429 RESOURCE_EXHAUSTED. */
export function isRateLimited(err: unknown): boolean {
  return err instanceof ApiError && err.status === 429;
}

/**
 * Runs a contender: reads the settings, hands them and an empty tally to `pattern`, and prints the
 * JSON line when it returns (or when SIGTERM stops it first).
 */
export async function runContender(
  name: string,
  pattern: (settings: ContenderSettings, tally: Tally) => Promise<void>,
): Promise<void> {
  const settings = readSettings(process.argv.slice(2), process.env);
  const tally: Tally = { results: new Array(settings.prompts.length), failed: 0, rateLimited429: 0 };
  const started = performance.now();
  const report = (finished: boolean) => {
    const cpu = process.cpuUsage();
    const kept = tally.results.filter((r) => r !== undefined).length;
    const line = {
      contender: name,
      model: settings.model,
      n: settings.prompts.length,
      finished,
      wallMs: Math.round(performance.now() - started),
      succeeded: kept,
      failed: tally.failed,
      pending: settings.prompts.length - kept - tally.failed,
      rateLimited429: tally.rateLimited429,
      inOrder: tally.results.every((r, i) => r === undefined || echoes(r, settings.prompts[i]!)),
      cpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  const stop = () => {
    report(false);
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  if (settings.capSeconds !== undefined) setTimeout(stop, settings.capSeconds * 1000).unref();
  await pattern(settings, tally);
  report(true);
}
