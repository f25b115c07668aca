import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readQuotas } from '../functions/platform/config.js';
import { STRICT_QUEUE_RAMP } from '../infra/local/cloud-tasks/profile.js';
import { PROJECT_ROOT, startStack } from '../infra/local/stack.js';
import { EXIT } from './exit-codes.js';
import { run } from './program.js';
import { readPromptFile } from './prompt-file.js';

/**
 * `npm start [-- [--mode auto|realtime|batch] FILE.jsonl]`: boots the local cloud, then runs
 * `gemini-fanout submit FILE --watch --out .local/results/…` against it: the job's progress, a
 * summary and where the results are; then what the Gemini stand-in saw (the peak request rate
 * against the model's quota, 429s). Exits with the CLI's code: 0 when every item succeeded.
 * `--mode batch` sends the set through the (stand-in's) Gemini Batch API at half the price.
 */
async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { mode: { type: 'string', default: 'auto' } },
    allowPositionals: true,
  });
  const mode = values.mode;
  if (mode !== 'auto' && mode !== 'realtime' && mode !== 'batch') {
    process.stderr.write(`--mode must be auto, realtime or batch, not ${mode}\n`);
    return EXIT.badInput;
  }
  const file = resolve(positionals[0] ?? join(PROJECT_ROOT, 'examples', 'prompts.jsonl'));
  let count: number;
  try {
    count = (await readPromptFile(file)).length;
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return EXIT.badInput;
  }
  process.stdout.write(`gemini-fanout: ${count} prompts from ${file} (mode ${mode})\n`);
  process.stdout.write(
    'booting the local cloud (Firestore, Cloud Tasks, Cloud Storage, Gemini stand-in, functions)…\n',
  );
  // The local cloud's queues ramp up when cold (the strict profile, our hypothesis of Cloud Tasks):
  // its functions plan for that ramp (`queueRamp`), as a deployment can in infra/quotas.json.
  const quotasFile = join(PROJECT_ROOT, '.local', 'quotas.start.json');
  mkdirSync(dirname(quotasFile), { recursive: true });
  writeFileSync(
    quotasFile,
    `${JSON.stringify({ ...readQuotasFile(), queueRamp: STRICT_QUEUE_RAMP }, null, 2)}\n`,
  );
  const stack = await startStack({
    portBase: 0,
    quotasFile,
    logLevel: 'warn',
    // Cloud Scheduler ticks every minute; locally every 2 s, so a batch job is collected soon.
    schedulerIntervalMs: 2000,
    standIn: { latency: { '*': { meanMs: 600, jitterMs: 300 } } },
  });
  const interrupt = new AbortController();
  process.on('SIGINT', () => interrupt.abort(new Error('interrupted')));
  try {
    const outDir = join(PROJECT_ROOT, '.local', 'results');
    mkdirSync(outDir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
    const outFile = relative(process.cwd(), join(outDir, `${basename(file, '.jsonl')}-${stamp}.jsonl`));
    const code = await run(
      ['submit', file, '--mode', mode, '--watch', '--out', outFile, '--url', stack.info.ingestUrl],
      { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: interrupt.signal },
    );
    if (code !== EXIT.interrupted) {
      const quotas = readQuotas();
      for (const [model, stats] of Object.entries(stack.standIn?.stats().models ?? {})) {
        if (stats.requests === 0 && stats.batchRequests === 0) continue;
        process.stdout.write(
          `gemini stand-in (${model}): peak ${stats.peakRequestsPer60s} requests in any 60 s vs quota ${quotas.models[model]?.rpm ?? '?'} RPM; 429s ${stats.rejected429}; batches ${stats.batchesCreated}\n`,
        );
      }
      process.stdout.write('(`npm run dev` keeps the local cloud up for `npx gemini-fanout`: see README)\n');
    }
    return code;
  } finally {
    await stack.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exit(EXIT.unreachable);
  },
);

/** The bundled quotas file as written (infra/quotas.json), to extend with the local cloud's ramp. */
function readQuotasFile(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(PROJECT_ROOT, 'infra', 'quotas.json'), 'utf8'));
}
