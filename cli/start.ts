import { createWriteStream, mkdirSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { Storage } from '@google-cloud/storage';
import { createJobsClient } from '../functions/api/client.js';
import { isTerminalStatus, type JobView } from '../functions/api/jobs.js';
import { readQuotas } from '../functions/platform/config.js';
import { PROJECT_ROOT, startStack } from '../infra/local/stack.js';
import { progressLine } from './progress.js';
import { readPromptFile } from './prompt-file.js';

/**
 * `npm start [-- [--mode auto|realtime|batch] FILE.jsonl]`: boots the local cloud, runs the prompt
 * set through the real functions, shows progress, prints a summary and where the results are, and
 * exits. `--mode batch` sends it through the (stand-in's) Gemini Batch API at half the price.
 */
async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { mode: { type: 'string', default: 'auto' } },
    allowPositionals: true,
  });
  const mode = values.mode;
  if (mode !== 'auto' && mode !== 'realtime' && mode !== 'batch')
    throw new Error(`--mode must be auto, realtime or batch, not ${mode}`);
  const file = resolve(positionals[0] ?? join(PROJECT_ROOT, 'examples', 'prompts.jsonl'));
  const requests = await readPromptFile(file);
  process.stdout.write(`gemini-fanout: ${requests.length} prompts from ${file} (mode ${mode})\n`);
  process.stdout.write(
    'booting the local cloud (Firestore, Cloud Tasks, Cloud Storage, Gemini stand-in, functions)…\n',
  );
  const stack = await startStack({
    portBase: 0,
    logLevel: 'warn',
    // Cloud Scheduler ticks every minute; locally every 2 s, so a batch job is collected soon.
    schedulerIntervalMs: 2000,
    standIn: { latency: { '*': { meanMs: 600, jitterMs: 300 } } },
  });
  const stop = async (code: number) => {
    await stack.close();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(130));
  try {
    await uploadExampleImages(stack.info.projectId, stack.info.bucket);
    const client = createJobsClient(stack.info.ingestUrl);
    const created = await client.submit({ requests, mode });
    const started = Date.now();
    process.stdout.write(`job ${created.id}: ${created.total} items queued (${created.mode})\n`);
    const tty = process.stdout.isTTY;
    let lastPrint = 0;
    const show = (polled: JobView) => {
      const line = progressLine(polled, Date.now() - started);
      if (tty) process.stdout.write(`\r${line}\x1b[K`);
      else if (Date.now() - lastPrint > 5000) {
        process.stdout.write(`${line}\n`);
        lastPrint = Date.now();
      }
    };
    const job = await client.waitFor(created.id, {
      timeoutMs: Number.POSITIVE_INFINITY,
      intervalMs: 400,
      // Sees every job polled: draws its progress on the way.
      until: (polled) => {
        show(polled);
        return isTerminalStatus(polled.status);
      },
    });
    const wallMs = Date.now() - started;
    process.stdout.write(tty ? `\r${progressLine(job, wallMs)}\x1b[K\n` : `${progressLine(job, wallMs)}\n`);

    const outDir = join(PROJECT_ROOT, '.local', 'results');
    mkdirSync(outDir, { recursive: true });
    const outFile = join(outDir, `${basename(file, '.jsonl')}-${job.id}.jsonl`);
    await pipeline(jsonLines(client.resultsJsonl(job.id)), createWriteStream(outFile));

    const stats = stack.standIn?.stats().models[job.model];
    const quotas = readQuotas();
    const quota = quotas.models[job.model];
    process.stdout.write(
      [
        '',
        `status        ${job.status}`,
        `items         ${job.counts.total} (succeeded ${job.counts.succeeded}, failed ${job.counts.failed}, cancelled ${job.counts.cancelled})`,
        `wall time     ${(wallMs / 1000).toFixed(1)} s`,
        `rate          ${Math.round((job.counts.total / wallMs) * 60_000)} requests/min overall; peak ${stats?.peakRequestsPer60s ?? '?'} in any 60 s vs quota ${quota?.rpm ?? '?'} RPM; 429s from Gemini: ${stats?.rejected429 ?? '?'}`,
        `tokens        ${job.usage.promptTokens} in, ${job.usage.outputTokens} out`,
        `cost          $${job.costUsd.toFixed(6)} at ${job.model} prices (infra/quotas.json)${job.mode === 'batch' ? `, batch rate (${quotas.batchDiscount * 100}%)` : ''}`,
        ...(job.paths ? [`paths         realtime ${job.paths.realtime}, batch ${job.paths.batch}`] : []),
        `results       ${outFile}`,
        '              (`npm run dev` keeps the local cloud up to post your own jobs: see README)',
        '',
      ].join('\n'),
    );
    await stop(job.status === 'succeeded' ? 0 : 1);
  } catch (err) {
    process.stderr.write(`\nerror: ${(err as Error).message}\n`);
    await stop(1);
  }
}

/** Result entries back to JSONL, one line each (the client has checked them against the contract). */
async function* jsonLines(entries: AsyncIterable<unknown>): AsyncGenerator<string> {
  for await (const entry of entries) yield `${JSON.stringify(entry)}\n`;
}

/** The sample set refers to images under gs://BUCKET/examples/images/; put them there. */
async function uploadExampleImages(projectId: string, bucket: string): Promise<void> {
  const dir = join(PROJECT_ROOT, 'examples', 'images');
  const storage = new Storage({ projectId });
  for (const name of readdirSync(dir)) {
    await storage.bucket(bucket).upload(join(dir, name), { destination: `examples/images/${name}` });
  }
}

main().catch((err) => {
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exit(1);
});
