import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { echoes } from '../../bench/contenders/prompts.js';
import { ruleOfThumbConcurrency } from '../../bench/contenders/rule-of-thumb.js';
import type { JobsClient } from '../../functions/api/client.js';
import type { JobView, ResultEntry } from '../../functions/api/jobs.js';
import { isTerminalStatus } from '../../functions/api/jobs.js';
import { standInControl } from '../../infra/local/gemini/control.js';
import { PROJECT_ROOT } from '../../infra/local/stack.js';
import type { SystemName } from './compare-settings.js';
import { treeCpuSeconds } from './compare-stack.js';

/**
 * One run of one system on its own model: a contender script in a child process, or a gemini-fanout
 * job through the jobs API. Either is stopped at its cap and then reported as capped, never as done.
 */
export interface RunOutcome {
  system: SystemName;
  model: string;
  n: number;
  /** Whether every prompt ended (answered or lost) before the cap. */
  finished: boolean;
  /** Makespan: first request to last answer in hand (gemini-fanout: submit to results read); the cap when capped. */
  wallS: number;
  capS: number;
  /** Prompts answered, and prompts whose call failed for good (lost). */
  done: number;
  lost: number;
  /** Answers kept at their prompt's index, each echoing its own prompt. */
  inOrder: boolean;
  /** CPU seconds: the contender's process, or gemini-fanout's functions host and its instances. */
  cpuS: number;
  /** What the stand-in saw for this model. */
  upstream: {
    requests: number;
    admitted: number;
    rejected429: number;
    peakAdmittedPer60s: number;
    peakInputTokensPer60s: number;
    inputTokens: number;
    answeredAgain: number;
  };
  /** 429s the contender counted itself (gemini-fanout's are the stand-in's). */
  ownCount429?: number;
  /** The semaphore size of the rule of thumb. */
  concurrency?: number;
  /** gemini-fanout: the job's cost as the job view reports it. */
  costUsd?: number;
  /** The machine's 1-minute load average when the run started (the machine may be shared). */
  loadAtStart: number;
  error?: string;
}

/** Seconds past the cap before a contender that has not stopped itself is sent SIGTERM (start-up included). */
const BACKSTOP_S = 30;

const CONTENDER_FILES: Record<Exclude<SystemName, 'gemini-fanout'>, string> = {
  sequential: 'sequential.ts',
  'promise-all': 'promise-all.ts',
  'semaphore-10': 'semaphore-retry.ts',
  'rule-of-thumb': 'rule-of-thumb.ts',
};

interface ContenderLine {
  finished: boolean;
  wallMs: number;
  succeeded: number;
  failed: number;
  rateLimited429: number;
  inOrder: boolean;
  cpuSeconds: number;
}

async function upstreamOf(geminiBaseUrl: string, model: string): Promise<RunOutcome['upstream']> {
  const m = (await standInControl(geminiBaseUrl).stats()).models[model];
  return {
    requests: m?.requests ?? 0,
    admitted: m?.admitted ?? 0,
    rejected429: m?.rejected429 ?? 0,
    peakAdmittedPer60s: m?.peakAdmittedPer60s ?? 0,
    peakInputTokensPer60s: m?.peakInputTokensPer60s ?? 0,
    inputTokens: m?.inputTokens ?? 0,
    answeredAgain: m?.answeredAgain ?? 0,
  };
}

export interface ContenderRun {
  system: Exclude<SystemName, 'gemini-fanout'>;
  geminiBaseUrl: string;
  model: string;
  n: number;
  promptChars: number;
  rpm: number;
  latencyMs: number;
  capS: number;
}

/**
 * Runs a contender as `npx tsx bench/contenders/<file>.ts` would (node with the tsx loader, without
 * npx in between). It stops itself at the cap, counted from its first request like its makespan, and
 * prints its line with `finished: false`; SIGTERM (then SIGKILL) is the backstop if it does not.
 */
export async function runContender(run: ContenderRun): Promise<RunOutcome> {
  const args = [
    '--import',
    'tsx',
    join(PROJECT_ROOT, 'bench', 'contenders', CONTENDER_FILES[run.system]),
    '--base-url',
    run.geminiBaseUrl,
    '--model',
    run.model,
    '--n',
    String(run.n),
    '--prompt-chars',
    String(run.promptChars),
    '--rpm',
    String(run.rpm),
    '--latency-s',
    String(run.latencyMs / 1000),
    '--cap-s',
    String(run.capS),
  ];
  const loadAtStart = Math.round(loadavg()[0]! * 100) / 100;
  const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  const exited = new Promise<void>((ok) => child.once('close', () => ok()));
  let capped = false;
  const cap = setTimeout(
    () => {
      capped = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    },
    (run.capS + BACKSTOP_S) * 1000,
  );
  await exited;
  clearTimeout(cap);
  const last = lines.filter((l) => l.startsWith('{')).pop();
  const upstream = await upstreamOf(run.geminiBaseUrl, run.model);
  const concurrency =
    run.system === 'rule-of-thumb'
      ? { concurrency: ruleOfThumbConcurrency(run.rpm, run.latencyMs / 1000) }
      : {};
  if (!last) {
    return {
      system: run.system,
      model: run.model,
      n: run.n,
      finished: false,
      wallS: run.capS,
      capS: run.capS,
      done: upstream.admitted,
      lost: 0,
      inOrder: false,
      cpuS: Number.NaN,
      upstream,
      loadAtStart,
      ...concurrency,
      error: `no result line (exit ${child.exitCode}, signal ${child.signalCode}): ${stderr.trim()}`,
    };
  }
  const line = JSON.parse(last) as ContenderLine;
  return {
    system: run.system,
    model: run.model,
    n: run.n,
    finished: line.finished && !capped,
    wallS: line.wallMs / 1000,
    capS: run.capS,
    done: line.succeeded,
    lost: line.failed,
    inOrder: line.inOrder,
    cpuS: line.cpuSeconds,
    upstream,
    loadAtStart,
    ownCount429: line.rateLimited429,
    ...concurrency,
  };
}

export interface FanoutRun {
  jobs: JobsClient;
  geminiBaseUrl: string;
  functionsPid: number;
  model: string;
  prompts: string[];
  mode: 'realtime' | 'batch';
  capS: number;
}

/** The text of a result entry's response (the stand-in's answers have one text part). */
function answerText(entry: ResultEntry): string | undefined {
  if (!('response' in entry)) return undefined;
  const response = entry.response as {
    candidates?: Array<{ content?: { parts?: Array<{ text?: string }> } }>;
  };
  return response.candidates?.[0]?.content?.parts?.map((p) => p.text ?? '').join('');
}

const POLL_MS = 250;

/**
 * Submits the prompts as one gemini-fanout job, polls it (every 250 ms) until it is terminal, and
 * reads every result in input order; the makespan runs from the submit to the last result read.
 * At the cap the job is cancelled and reported as capped with what it had answered.
 */
export async function runFanout(run: FanoutRun): Promise<RunOutcome & { job: JobView }> {
  const loadAtStart = Math.round(loadavg()[0]! * 100) / 100;
  const cpuBefore = treeCpuSeconds(run.functionsPid);
  const started = performance.now();
  const deadline = started + run.capS * 1000;
  const created = await run.jobs.submit({ model: run.model, mode: run.mode, prompts: run.prompts });
  let job = await run.jobs.get(created.id);
  while (!isTerminalStatus(job.status) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    job = await run.jobs.get(created.id);
  }
  const finished = isTerminalStatus(job.status);
  if (!finished) job = await run.jobs.cancel(created.id);
  let inOrder = true;
  let index = 0;
  for await (const entry of run.jobs.resultsJsonl(created.id)) {
    const text = answerText(entry);
    if (entry.index !== index || (text !== undefined && !echoes(text, run.prompts[index]!))) inOrder = false;
    index++;
  }
  if (index !== run.prompts.length) inOrder = false;
  const wallS = finished ? (performance.now() - started) / 1000 : run.capS;
  const cpuS = treeCpuSeconds(run.functionsPid) - cpuBefore;
  return {
    system: 'gemini-fanout',
    model: run.model,
    n: run.prompts.length,
    finished,
    wallS,
    capS: run.capS,
    done: job.counts.succeeded,
    lost: job.counts.failed + (finished ? job.counts.cancelled : 0),
    inOrder,
    cpuS: Math.round(cpuS * 100) / 100,
    upstream: await upstreamOf(run.geminiBaseUrl, run.model),
    costUsd: job.costUsd,
    loadAtStart,
    job,
  };
}
