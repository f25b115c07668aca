import http from 'node:http';
import https from 'node:https';
import { createLocalOidcToken } from './oidc.js';

/** The HTTP request a task carries, normalised from HttpRequest at CreateTask. */
export interface HttpTarget {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Buffer;
  oidcToken?: { serviceAccountEmail: string; audience: string };
  oauthToken?: { serviceAccountEmail: string; scope: string };
}

/** What the X-CloudTasks-* headers of one attempt say. */
export interface AttemptMetadata {
  queueId: string;
  taskId: string;
  /** Attempts made before this one. */
  retryCount: number;
  /** Responses received before this one, 5xx not counted (as upstream documents). */
  executionCount: number;
  /** The task's schedule time, epoch ms. */
  etaMs: number;
  /** HTTP status of the previous attempt, when it got one. */
  previousResponse?: number;
  /** Why this is a retry; absent on the first attempt. */
  retryReason?: string;
}

/** How one attempt ended. */
export type AttemptOutcome =
  | { kind: 'response'; status: number; retryAfter?: string }
  | { kind: 'deadline' }
  | { kind: 'unreachable'; message: string }
  | { kind: 'aborted' };

/** Headers the service computes or reserves; a task's own values for them are dropped. */
function isReservedHeader(lower: string): boolean {
  return (
    lower === 'host' ||
    lower === 'content-length' ||
    lower === 'user-agent' ||
    lower.startsWith('x-google-') ||
    lower.startsWith('x-appengine-') ||
    lower.startsWith('x-cloudtasks-')
  );
}

/**
 * The headers of one attempt: the task's own (minus reserved ones), `User-Agent`, the
 * X-CloudTasks-* set and, for OIDC/OAuth tasks, an `Authorization` that replaces any given one.
 * A task with a body and no Content-Type gets `defaultContentType` when one is given (upstream
 * sends `application/octet-stream`, so a JSON body without the header is not parsed as JSON).
 */
export function buildDispatchHeaders(
  target: HttpTarget,
  meta: AttemptMetadata,
  nowMs: number,
  defaultContentType: string | false = false,
): Record<string, string> {
  const headers: Record<string, string> = {};
  const withToken = target.oidcToken !== undefined || target.oauthToken !== undefined;
  let hasContentType = false;
  for (const [name, value] of Object.entries(target.headers)) {
    const lower = name.toLowerCase();
    if (isReservedHeader(lower)) continue;
    if (withToken && lower === 'authorization') continue;
    if (lower === 'content-type') hasContentType = true;
    headers[name] = value;
  }
  if (!hasContentType && defaultContentType !== false && target.body.length > 0) {
    headers['Content-Type'] = defaultContentType;
  }
  headers['User-Agent'] = 'Google-Cloud-Tasks';
  headers['X-CloudTasks-QueueName'] = meta.queueId;
  headers['X-CloudTasks-TaskName'] = meta.taskId;
  headers['X-CloudTasks-TaskRetryCount'] = String(meta.retryCount);
  headers['X-CloudTasks-TaskExecutionCount'] = String(meta.executionCount);
  headers['X-CloudTasks-TaskETA'] = (meta.etaMs / 1000).toFixed(6);
  if (meta.previousResponse !== undefined) {
    headers['X-CloudTasks-TaskPreviousResponse'] = String(meta.previousResponse);
  }
  if (meta.retryReason !== undefined) headers['X-CloudTasks-TaskRetryReason'] = meta.retryReason;
  if (target.oidcToken !== undefined) {
    const { serviceAccountEmail, audience } = target.oidcToken;
    headers.Authorization = `Bearer ${createLocalOidcToken(serviceAccountEmail, audience || target.url, nowMs)}`;
  } else if (target.oauthToken !== undefined) {
    // Upstream mints a Google access token; locally an opaque marker naming the account will do.
    headers.Authorization = `Bearer local-oauth.${Buffer.from(target.oauthToken.serviceAccountEmail).toString('base64url')}`;
  }
  return headers;
}

/** Connection pools for the attempts of one emulator, destroyed on close. */
export interface DispatchAgents {
  http: http.Agent;
  https: https.Agent;
}

/** Creates keep-alive pools without a socket cap: concurrency is the queue's business. */
export function createDispatchAgents(): DispatchAgents {
  return {
    http: new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY }),
    https: new https.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY }),
  };
}

/** Knobs of one HTTP call. */
export interface SendOptions {
  /** The task's dispatchDeadline: no full response by then is a DEADLINE_EXCEEDED failure. */
  deadlineMs: number;
  agents: DispatchAgents;
  /** Aborts the call when the emulator closes. */
  signal: AbortSignal;
}

/**
 * Sends one attempt and waits for the whole response (body discarded). Never rejects: every
 * ending becomes an {@link AttemptOutcome}. Redirects are not followed; a 3xx is a failure.
 */
export function sendAttempt(
  target: HttpTarget,
  headers: Record<string, string>,
  options: SendOptions,
): Promise<AttemptOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: AttemptOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const url = new URL(target.url);
    const secure = url.protocol === 'https:';
    const hasBody = target.body.length > 0;
    const request = (secure ? https : http).request(url, {
      method: target.method,
      headers: hasBody ? { ...headers, 'Content-Length': String(target.body.length) } : headers,
      agent: secure ? options.agents.https : options.agents.http,
    });
    const onAbort = (): void => {
      request.destroy();
      finish({ kind: 'aborted' });
    };
    const timer = setTimeout(() => {
      request.destroy();
      finish({ kind: 'deadline' });
    }, options.deadlineMs);
    if (options.signal.aborted) {
      onAbort();
      return;
    }
    options.signal.addEventListener('abort', onAbort, { once: true });
    request.on('error', (error) => finish({ kind: 'unreachable', message: error.message }));
    request.on('response', (response) => {
      const retryAfter = response.headers['retry-after'];
      response.on('error', (error) => finish({ kind: 'unreachable', message: error.message }));
      response.on('end', () =>
        finish({ kind: 'response', status: response.statusCode ?? 0, ...(retryAfter ? { retryAfter } : {}) }),
      );
      response.resume();
    });
    request.end(hasBody ? target.body : undefined);
  });
}

/** The google.rpc.Code an HTTP status maps to, for Attempt.responseStatus. */
export function rpcCodeForHttpStatus(status: number): number {
  if (status >= 200 && status < 300) return 0;
  const table: Record<number, number> = {
    400: 3,
    401: 16,
    403: 7,
    404: 5,
    409: 10,
    429: 8,
    499: 1,
    500: 13,
    501: 12,
    503: 14,
    504: 4,
  };
  return table[status] ?? (status >= 400 && status < 500 ? 9 : 2);
}
