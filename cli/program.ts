/**
 * `gemini-fanout`: the jobs API from a terminal. `run(argv, io)` parses the arguments, does the
 * command and returns the exit code (./exit-codes.ts); it never calls `process.exit`, so `npm start`
 * runs it in-process and tests can too.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { JobsApiError } from '../functions/api/client.js';
import type { PipelineFields, RequestItem } from '../functions/api/jobs.js';
import { describeEstimate, describeJob, jobsTable, summarise } from './describe.js';
import {
  batchTimeoutSeconds,
  DOCTOR_HELP,
  type DoctorOptions,
  doctorExitCode,
  doctorSettings,
  renderDoctorTable,
  runDoctor,
} from './doctor.js';
import { CliError, EXIT, EXIT_CODES_HELP, exitCodeFor, outcomeCode } from './exit-codes.js';
import { readPipelineFile } from './pipeline-file.js';
import { readPromptFile } from './prompt-file.js';
import { createRenderer, type Output, renderModeFor } from './render.js';
import { type ResultsFormat, writeResults } from './results.js';
import { describeRetry, type RetryFlags, requestRetry } from './retry.js';
import { resolveTarget, type Target, type TargetOptions } from './target.js';
import { watchJob } from './watch.js';

export interface CliIo {
  stdout: Output & NodeJS.WritableStream;
  stderr: Output & NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C: a watch stops (the job goes on) and the command returns 130. */
  signal?: AbortSignal;
  /** Overrides for tests and `npm start`: where the stack file is, how identity tokens are had. */
  target?: Pick<TargetOptions, 'stackFile' | 'idToken'>;
}

/** `GET /jobs` pages: at most 100 jobs, 20 by default. */
const JOBS_PAGE = { max: 100, default: 20 } as const;

/** How the CLI names itself in hints (it runs from the repository through npx). */
const SELF = 'npx gemini-fanout';

const TARGET_HELP = `
The jobs API: --url URL, else $FANOUT_URL, else the local cloud of \`npm run dev\` (.local/stack.json).
A deployed (non-loopback) URL gets your Google identity token from Application Default Credentials
(\`gcloud auth application-default login\`); it is never printed. Against the local cloud,
--as EMAIL acts as EMAIL (a token its identity provider signs); without it you are developer@localhost.`;

interface CommonOptions {
  url?: string;
  json?: boolean;
  /** `--as EMAIL`: the identity to act as against the local cloud. */
  as?: string;
}

export async function run(argv: string[], io: CliIo): Promise<number> {
  const signal = io.signal ?? new AbortController().signal;
  let code: number = EXIT.ok;
  const target = (url: string | undefined): Promise<Target> =>
    resolveTarget({ url, env: io.env, ...io.target, as: program.opts<CommonOptions>().as });
  const out = (text: string) => io.stdout.write(`${text}\n`);
  const json = (value: unknown) => io.stdout.write(`${JSON.stringify(value)}\n`);

  const program = new Command('gemini-fanout')
    .description('Run prompt sets through Gemini with gemini-fanout: submit, watch, results, cancel.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError('(add --help for usage)')
    .helpCommand(true)
    // The connection options belong to the program, not to each command: commander then takes them
    // before or after the command name (`--url U submit …` and `submit … --url U`), and the top-level
    // help lists them once; each command's help shows them under "Global Options".
    .option('--url <url>', 'the jobs API (the ingest function URL)')
    .option('--json', 'machine-readable output on stdout')
    .option('--as <email>', 'against the local cloud: act as this identity (a token of its issuer)')
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('after', `${TARGET_HELP}\n${EXIT_CODES_HELP}`);

  const command = (spec: string, description: string) =>
    program.command(spec).description(description).addHelpText('after', `${TARGET_HELP}\n${EXIT_CODES_HELP}`);
  /** A command's own options with the global ones, wherever on the line they were given. */
  const withGlobals = <O extends object>(opts: O): O & CommonOptions => ({
    ...opts,
    ...program.opts<CommonOptions>(),
  });

  command('submit [file]', 'submit a prompt file (JSONL) or --prompt texts as a job')
    .option('-p, --prompt <text...>', 'a prompt (repeatable) instead of a file')
    .option('-m, --model <model>', 'the Gemini model (the server has a default)')
    .addOption(
      new Option(
        '--mode <mode>',
        'realtime (the queues), flex (the queues on Flex: half the price, minutes), batch (the Batch API, half the price), or auto',
      )
        .choices(['auto', 'realtime', 'flex', 'batch'])
        .default('auto'),
    )
    .option(
      '--deadline <when>',
      'when the results are needed: 30m, 6h, 1h30m or an ISO time (auto picks the tier by it)',
    )
    .option(
      '--dry-run',
      'print what it would take (items, tokens, cost per tier, quota time); submit nothing',
    )
    .option('-w, --watch', 'watch it to the end; the exit code then tells how it ended')
    .option('-o, --out <file>', 'with --watch: write the results there (JSONL, input order) when done')
    .option('--pipeline <file>', 'run each prompt through the steps of this YAML or JSON file (a pipeline)')
    .addHelpText(
      'after',
      `
A prompt file has one JSON object per line: {"key": "a", "prompt": "..."} or
{"key": "a", "request": GenerateContentRequest}, optionally with "media": [{"gcsUri"|"url", "mimeType"}].
A pipeline file holds {steps: [{name, model|models, prompt|prompts, config?, systemInstruction?}],
onStepError?: fail|continue}, or just the list of steps; a prompt says {{input}}, {{step}},
{{step.field}} (a JSON answer's field) or {{step.0}} (a fan-out's first answer).`,
    )
    .action(async (file: string | undefined, own: SubmitFlags) => {
      code = await submit(file, withGlobals(own));
    });

  command('status <id>', "show a job: status, counts, tokens, cost, the model's quota").action(
    async (id: string, own: object) => {
      const opts = withGlobals(own);
      const job = await (await target(opts.url)).client.get(id, { signal });
      if (opts.json) json(job);
      else out(describeJob(job));
    },
  );

  command('watch <id>', 'follow a job to its end (server-sent events, resumed after a drop)').action(
    async (id: string, own: object) => {
      const opts = withGlobals(own);
      const t = await target(opts.url);
      code = await watch(t, id, opts);
    },
  );

  command('results <id>', "write a job's results in input order (one result line per item)")
    .option('-o, --out <file>', 'write to this file instead of stdout')
    .addOption(
      new Option('--format <format>', 'JSON lines, or one JSON array')
        .choices(['jsonl', 'json'])
        .default('jsonl'),
    )
    .action(async (id: string, own: { out?: string; format: ResultsFormat }) => {
      const opts = withGlobals(own);
      const t = await target(opts.url);
      const job = await t.client.get(id, { signal });
      if (job.counts.pending > 0) {
        io.stderr.write(
          `job ${id} is ${job.status}: ${job.counts.pending} items have no result yet (their lines say "state":"pending")\n`,
        );
      }
      const dest = opts.out ? { file: opts.out } : { stream: io.stdout };
      const written = await writeResults(t.client, id, opts.format, dest, signal);
      if (opts.out) {
        const note = `${written.lines} results (${written.succeeded} succeeded, ${written.failed} failed${written.pending ? `, ${written.pending} pending` : ''}) written to ${opts.out}`;
        if (opts.json) json({ file: opts.out, ...written });
        else out(note);
      }
    });

  command('cancel <id>', 'cancel a job: pending items end as cancelled, no further Gemini calls').action(
    async (id: string, own: object) => {
      const opts = withGlobals(own);
      const job = await (await target(opts.url)).client.cancel(id, { signal });
      if (opts.json) return void json(job);
      const c = job.counts;
      out(
        job.status === 'cancelled'
          ? `job ${id} cancelled: ${c.cancelled} items cancelled; ${c.succeeded} succeeded and ${c.failed} failed before`
          : `job ${id} is ${job.status}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.cancelled} cancelled, ${c.pending} pending`,
      );
    },
  );

  command('retry <id>', "re-run a finished job's failed and cancelled items as a new job linked to it")
    .option(
      '--only-changed <file>',
      'instead: run only the lines of this prompt file whose request changed (by key)',
    )
    .option('-w, --watch', 'watch the new job to its end')
    .action(async (id: string, own: RetryFlags) => {
      const opts = withGlobals(own);
      const t = await target(opts.url);
      const created = await requestRetry(t.client, id, opts.onlyChanged, signal);
      if (opts.json) json(opts.watch ? { type: 'submitted', job: created } : created);
      else out(describeRetry(created, id, opts.onlyChanged));
      if (opts.watch) code = await watch(t, created.id, opts);
    });

  command('jobs', 'list your recent jobs, newest first')
    .option('-n, --limit <n>', `how many (1..${JOBS_PAGE.max})`, pageSize, JOBS_PAGE.default)
    .option('--page-token <token>', 'the next page, as the previous one said')
    .action(async (own: { limit: number; pageToken?: string }) => {
      const opts = withGlobals(own);
      const page = await (await target(opts.url)).client.list({
        pageSize: opts.limit,
        ...(opts.pageToken ? { pageToken: opts.pageToken } : {}),
        signal,
      });
      if (opts.json) return void json(page);
      out(page.jobs.length ? jobsTable(page.jobs) : 'no jobs yet');
      if (page.nextPageToken) out(`more: ${SELF} jobs --page-token ${page.nextPageToken}`);
      if (page.owner)
        out(`your owner prefix: ${page.owner.prefix} (media: ${page.owner.mediaLocations.join(', ')})`);
    });

  command(
    'callback-key',
    "print your callback key: your jobs' callbacks are signed with it (Standard Webhooks)",
  )
    .addHelpText(
      'after',
      `
Check a callback with verifyCallback(headers, rawBody, key, {url}) from functions/api/client.ts.
The key is a secret: keep it where your receiver reads its configuration, never in a log.`,
    )
    .action(async (own: object) => {
      const opts = withGlobals(own);
      const answer = await (await target(opts.url)).client.callbackKey({ signal });
      if (opts.json) json(answer);
      else out(answer.key);
    });

  command('doctor', 'check a setup end to end: credentials, Gemini, queues, bucket, the jobs API')
    .option(
      '--quotas <file>',
      'the quotas file the queues should match ($QUOTAS_FILE, else infra/quotas.json)',
    )
    .option('--batch', 'also send a two-line batch through the Batch API (costs cents, takes minutes)')
    .option('--batch-timeout <seconds>', 'how long to wait for that batch', batchTimeoutSeconds, 900)
    .addHelpText('after', `\n${DOCTOR_HELP}`)
    .action(async (own: DoctorOptions) => {
      const opts = withGlobals(own);
      const t = await target(opts.url);
      const results = await runDoctor(t, await doctorSettings(t, io.env, opts, io.target?.stackFile), opts);
      if (opts.json) json({ checks: results });
      else out(renderDoctorTable(results));
      code = doctorExitCode(results);
    });

  interface SubmitFlags {
    prompt?: string[];
    model?: string;
    mode: 'auto' | 'realtime' | 'flex' | 'batch';
    deadline?: string;
    dryRun?: boolean;
    watch?: boolean;
    out?: string;
    pipeline?: string;
  }

  async function submit(file: string | undefined, opts: CommonOptions & SubmitFlags): Promise<number> {
    if (opts.out && !opts.watch)
      throw new CliError('--out needs --watch (or use `results ID --out FILE`)', EXIT.badInput);
    const requests = await readInput(file, opts.prompt);
    const pipeline = opts.pipeline ? await readPipeline(opts.pipeline) : {};
    const t = await target(opts.url);
    const body = {
      requests,
      ...pipeline,
      mode: opts.mode,
      ...(opts.model ? { model: opts.model } : {}),
      ...(opts.deadline ? { deadline: opts.deadline } : {}),
    };
    if (opts.dryRun) {
      const estimate = await t.client.estimate(body, { signal });
      if (opts.json) json(estimate);
      else out(describeEstimate(estimate));
      return EXIT.ok;
    }
    const created = await t.client.submit(body, { signal });
    if (opts.json) json(opts.watch ? { type: 'submitted', job: created } : created);
    else out(`job ${created.id}: ${created.total} items queued (${created.mode}) at ${t.url}`);
    if (!opts.watch) {
      if (!opts.json) out(`watch it: ${SELF} watch ${created.id}${urlHint(t)}`);
      return EXIT.ok;
    }
    return watch(t, created.id, opts);
  }

  async function watch(t: Target, id: string, opts: CommonOptions & { out?: string }): Promise<number> {
    const mode = renderModeFor(io.stdout, Boolean(opts.json));
    const renderer = createRenderer(mode, io.stdout, io.stderr);
    let watched: Awaited<ReturnType<typeof watchJob>>;
    try {
      watched = await watchJob({ client: t.client, id, renderer, signal });
    } catch (err) {
      if (signal.aborted) {
        throw new CliError(
          `stopped watching job ${id}; it goes on: ${SELF} watch ${id}${urlHint(t)}`,
          EXIT.interrupted,
        );
      }
      throw err;
    }
    const { job } = watched;
    const written = opts.out
      ? await writeResults(t.client, id, 'jsonl', { file: opts.out }, signal)
      : undefined;
    if (opts.json) {
      json({
        type: 'done',
        job,
        ...(written && opts.out ? { results: { file: opts.out, ...written } } : {}),
      });
    } else {
      const hint = opts.out
        ? `${opts.out} (${written?.lines} lines, input order)`
        : `${SELF} results ${id}${urlHint(t)} --out ${id}.jsonl`;
      out(summarise(job, watched.failures, hint));
    }
    return outcomeCode(job);
  }

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with 0; every usage error is 2.
      return err.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    io.stderr.write(`gemini-fanout: ${message(err)}\n`);
    return exitCodeFor(err);
  }
}

/** The prompts of a file, or of --prompt: exactly one of the two. */
async function readInput(file: string | undefined, prompts: string[] | undefined): Promise<RequestItem[]> {
  if (file && prompts?.length) throw new CliError('give a prompt file or --prompt, not both', EXIT.badInput);
  if (prompts?.length) return prompts.map((prompt, i) => ({ key: String(i), prompt }));
  if (!file)
    throw new CliError('nothing to submit: give a prompt file (JSONL) or --prompt TEXT', EXIT.badInput);
  try {
    return await readPromptFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? `cannot read ${file}: no such file` : e.message;
    throw new CliError(why, EXIT.badInput);
  }
}

/** `--pipeline FILE`: its steps, checked; a bad file is bad input (exit 2), named with its field. */
async function readPipeline(file: string): Promise<PipelineFields> {
  try {
    return await readPipelineFile(file);
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err), EXIT.badInput);
  }
}

function packageVersion(): string {
  const pkg = new URL('../package.json', import.meta.url);
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

function pageSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > JOBS_PAGE.max) {
    throw new InvalidArgumentError(`must be a whole number from 1 to ${JOBS_PAGE.max}`);
  }
  return n;
}

/** `--url URL` for hints, when the URL was given that way (the others are found again by themselves). */
function urlHint(t: Target): string {
  return t.from === '--url' ? ` --url ${t.url}` : '';
}

/** One line for stderr; a 400's field problems follow it, one a line. */
function message(err: unknown): string {
  if (err instanceof JobsApiError && Array.isArray(err.body?.error.details)) {
    const problems = (err.body.error.details as Array<{ field?: unknown; message?: unknown }>)
      .filter((d) => typeof d?.field === 'string')
      .slice(0, 10)
      .map((d) => `\n  ${String(d.field)}: ${String(d.message)}`);
    return `${err.message}${problems.join('')}`;
  }
  return err instanceof Error ? err.message : String(err);
}
