/**
 * `gemini-fanout retry ID`: a finished job's failed and cancelled items as a new job linked to it
 * (`POST /jobs/{id}/retry`); with `--only-changed FILE`, only the lines of FILE whose request
 * changed against the job's items (by key), so a re-run costs only what is missing.
 */
import type { JobsClient } from '../functions/api/client-interface.js';
import type { CreatedJob } from '../functions/api/jobs.js';
import { CliError, EXIT } from './exit-codes.js';
import { readPromptFile } from './prompt-file.js';

export interface RetryFlags {
  onlyChanged?: string;
  watch?: boolean;
}

/** Asks the API for the re-run of `id`: from the prompt file of `--only-changed`, else of every failed item. */
export async function requestRetry(
  client: JobsClient,
  id: string,
  onlyChanged: string | undefined,
  signal: AbortSignal,
): Promise<CreatedJob> {
  const body = onlyChanged ? { requests: await readFile(onlyChanged) } : {};
  return client.retry(id, body, { signal });
}

/** One line for a terminal: the new job and what it re-runs. */
export function describeRetry(created: CreatedJob, id: string, onlyChanged: string | undefined): string {
  const what = onlyChanged ? `changed lines of ${onlyChanged}` : 'failed and cancelled items';
  return `job ${created.id}: ${created.total} ${what} of job ${id} queued again (${created.mode})`;
}

async function readFile(file: string) {
  try {
    return await readPromptFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliError(e.code === 'ENOENT' ? `cannot read ${file}: no such file` : e.message, EXIT.badInput);
  }
}
