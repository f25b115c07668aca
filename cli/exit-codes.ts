/**
 * What the CLI's exit code means: scripts branch on it, so each outcome has its own and the numbers
 * never change meaning. Listed in every command's `--help` ({@link EXIT_CODES_HELP}).
 */
import { JobsApiContractError, JobsApiError } from '../functions/api/client.js';
import type { JobView } from '../functions/api/jobs.js';

export const EXIT = {
  /** The command did what it was asked; a watched job ended with every item succeeded. */
  ok: 0,
  /** A watched job ended with failed items (or as failed). */
  itemsFailed: 1,
  /** Bad usage or input: an unknown option, an unreadable prompt file, a 4xx such as 400 or 404. */
  badInput: 2,
  /** A watched job was cancelled. */
  cancelled: 3,
  /** The jobs API could not be reached, or answered 5xx or outside its contract. */
  unreachable: 4,
  /** No identity token could be had for a deployed URL, or the API answered 401/403. */
  auth: 5,
  /** Interrupted (Ctrl-C) while watching; the job goes on. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit codes, as `--help` lists them. */
export const EXIT_CODES_HELP = `
Exit codes:
  0    done; a watched job ended with every item succeeded
  1    a watched job ended with failed items (or as failed)
  2    bad usage or input (unknown option, bad prompt file, the API answered 4xx: 400, 404, 409, 413)
  3    a watched job was cancelled
  4    the jobs API is unreachable, or answered 5xx or outside its contract
  5    no Google identity token for a deployed URL, or the API answered 401/403
  130  interrupted while watching (the job goes on)`;

/** An error the CLI reports as one line on stderr, exiting with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The exit code an error means. */
export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof JobsApiError) {
    if (err.status === 401 || err.status === 403) return EXIT.auth;
    return err.status >= 400 && err.status < 500 ? EXIT.badInput : EXIT.unreachable;
  }
  if (err instanceof JobsApiContractError) return EXIT.unreachable;
  // fetch failed: refused, DNS, reset, TLS. The CLI's own bugs land here too; they are rare.
  return EXIT.unreachable;
}

/**
 * The exit code of a terminal job: 0 only when every item succeeded. A cancelled job is 3 even if
 * some items failed before the cancel.
 */
export function outcomeCode(job: JobView): ExitCode {
  if (job.status === 'cancelled') return EXIT.cancelled;
  if (job.status === 'failed' || job.counts.failed > 0) return EXIT.itemsFailed;
  if (job.counts.cancelled > 0) return EXIT.cancelled;
  return EXIT.ok;
}
