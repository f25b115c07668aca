/** The errors of the jobs API client, and the helpers that build their messages. */
import type { z } from 'zod';
import type { ErrorBody } from './jobs.js';

/** A non-2xx answer. `body` is the parsed `{error:{…}}`, or undefined when the body is not that shape. */
export class JobsApiError extends Error {
  constructor(
    /** The HTTP status. */
    readonly status: number,
    readonly body: ErrorBody | undefined,
    /** The body as received, when it is not an {@link ErrorBody} (a proxy's HTML page, say). */
    readonly raw: string | undefined,
    what: string,
  ) {
    super(`${what} answered ${status}: ${body ? body.error.message : (raw ?? '').slice(0, 300)}`);
    this.name = 'JobsApiError';
  }
}

/** A 2xx answer that does not match the jobs API contract: the client and the server disagree. */
export class JobsApiContractError extends Error {
  constructor(
    what: string,
    problem: string,
    readonly issues: z.core.$ZodIssue[] = [],
  ) {
    super(`${what} answered outside the jobs API contract: ${problem}`);
    this.name = 'JobsApiContractError';
  }
}

/**
 * One `path: message` per problem. A value that fits no member of a union is described by the member
 * it came closest to (fewest problems), so a result line without `index` says so rather than
 * "Invalid input".
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[] = []): string[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const closest = issue.errors.reduce((a, b) => (b.length < a.length ? b : a));
      return describeIssues(closest, path);
    }
    return [`${path.map(String).join('.') || '(body)'}: ${issue.message}`];
  });
}

/** The value of a JSON text, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
