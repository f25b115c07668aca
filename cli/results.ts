/**
 * Writes a job's results in input order, streamed from `GET /jobs/{id}/results?format=jsonl` (never
 * held whole): JSON lines, or one JSON array. To a file, or to stdout.
 */
import { once } from 'node:events';
import { open } from 'node:fs/promises';
import type { JobsClient } from '../functions/api/client.js';
import type { ResultEntry } from '../functions/api/jobs.js';
import { CliError, EXIT } from './exit-codes.js';
import type { Output } from './render.js';

export type ResultsFormat = 'jsonl' | 'json';

export interface ResultsWritten {
  lines: number;
  succeeded: number;
  failed: number;
  pending: number;
}

export async function writeResults(
  client: JobsClient,
  id: string,
  format: ResultsFormat,
  dest: { file: string } | { stream: Output & NodeJS.WritableStream },
  signal?: AbortSignal,
): Promise<ResultsWritten> {
  // The first entry is read before the file is opened: an unknown job leaves no empty file behind.
  const entries = client.resultsJsonl(id, signal ? { signal } : {})[Symbol.asyncIterator]();
  let next = await entries.next();
  const stream = 'file' in dest ? await openForWriting(dest.file) : dest.stream;
  let writeError: Error | undefined;
  if ('file' in dest) stream.on('error', (err: Error) => (writeError = err));
  const write = async (chunk: string) => {
    if (!stream.write(chunk)) await once(stream, 'drain', signal ? { signal } : {});
  };
  const counts: ResultsWritten = { lines: 0, succeeded: 0, failed: 0, pending: 0 };
  try {
    if (format === 'json') await write('[');
    for (; !next.done; next = await entries.next()) {
      const text = JSON.stringify(next.value);
      if (format === 'json') await write(`${counts.lines ? ',' : ''}\n${text}`);
      else await write(`${text}\n`);
      counts.lines++;
      tally(counts, next.value);
    }
    if (format === 'json') await write(counts.lines ? '\n]\n' : ']\n');
  } finally {
    await entries.return?.();
    if ('file' in dest) {
      stream.end();
      await once(stream, 'close').catch(() => undefined);
    }
  }
  if (writeError && 'file' in dest)
    throw new CliError(`cannot write ${dest.file}: ${writeError.message}`, EXIT.badInput);
  return counts;
}

async function openForWriting(file: string): Promise<NodeJS.WritableStream & Output> {
  try {
    return (await open(file, 'w')).createWriteStream();
  } catch (err) {
    throw new CliError(`cannot write ${file}: ${(err as Error).message}`, EXIT.badInput);
  }
}

function tally(counts: ResultsWritten, entry: ResultEntry): void {
  if ('response' in entry) counts.succeeded++;
  else if ('error' in entry) counts.failed++;
  else counts.pending++;
}
