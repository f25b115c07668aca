import { randomUUID } from 'node:crypto';
import { expect, inject } from 'vitest';
import { createJobsClient, JobsApiError, type JobsClient, sleep } from '../../functions/api/client.js';
import {
  type CreateJobRequest,
  entryKey,
  type JobView,
  type ResultEntry,
  type ResultLine,
} from '../../functions/api/jobs.js';
import { ownerPrefix } from '../../functions/core/owner-prefix.js';
import { FRONT_FAULTS_PATH } from '../../infra/local/front-faults.js';
import { standInControl } from '../../infra/local/gemini/control.js';
import type { ModelStats, StandInStats } from '../../infra/local/gemini/stats.js';
import { LOCAL_DEVELOPER, localIdToken } from '../../infra/local/identity.js';
import type { StackInfo } from '../../infra/local/stack.js';

/**
 * Helpers for e2e tests against the local cloud: the jobs API through the one typed client, `call`
 * for raw requests (malformed bodies, unknown routes), and the Gemini stand-in's controls.
 */
export function stack(): StackInfo {
  return inject('stack');
}

/**
 * A signed ID token of the local cloud's issuer for `email`, for ingest (or `audience`); `exp` and
 * `iss` make tokens that must be refused.
 */
export function idToken(
  email: string,
  claims: { audience?: string; exp?: number; iss?: string } = {},
): Promise<string> {
  const { audience = stack().ingestUrl, ...rest } = claims;
  return localIdToken(email, { issuerUrl: stack().idIssuerUrl, audience, ...rest });
}

/**
 * The folder of the suite's bucket an owner's `gs://` media must be in (`media/{owner prefix}/`):
 * the local developer's (the caller of every request without a token) by default.
 */
export function mediaFolder(owner: string = LOCAL_DEVELOPER): string {
  return `media/${ownerPrefix(owner)}/`;
}

export interface Json {
  status: number;
  body: Record<string, unknown> & { [k: string]: unknown };
}

/** A raw request to the ingest function, for what the typed client will not send. */
export async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Json> {
  const res = await fetch(`${stack().ingestUrl}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

/**
 * fetch that tries again when the connection drops before an answer (some tests kill a function
 * instance mid-run, as Cloud Run may; a client then retries). Only for requests that are safe to
 * send twice: reads, cancels, and submits with an Idempotency-Key.
 */
async function retryingFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(input, init);
    } catch (err) {
      if (attempt >= 6 || init?.signal?.aborted) throw err;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}

/** The jobs API client every e2e test uses, pointed at the local cloud's ingest function. */
export function jobsClient(): JobsClient {
  return createJobsClient(stack().ingestUrl, { fetch: retryingFetch });
}

/** Submits a job with an Idempotency-Key, so a retry after a dropped connection makes no second job. */
export async function createJob(body: CreateJobRequest): Promise<string> {
  return (await jobsClient().submit(body, { idempotencyKey: randomUUID() })).id;
}

export async function getJob(id: string): Promise<JobView> {
  return jobsClient().get(id);
}

/** Polls until the job is terminal (or `until` says so). */
export async function waitForJob(
  id: string,
  timeoutMs: number,
  until?: (job: JobView) => boolean,
): Promise<JobView> {
  return jobsClient().waitFor(id, { timeoutMs, intervalMs: 500, ...(until ? { until } : {}) });
}

/** Whether the jobs API knows job `id` (a 404 says no; any other failure is thrown). */
export async function jobExists(id: string): Promise<boolean> {
  try {
    await jobsClient().get(id);
    return true;
  } catch (err) {
    if (err instanceof JobsApiError && err.status === 404) return false;
    throw err;
  }
}

/**
 * Waits for a job the bucket intake makes (it exists only once intake has read the file), then as
 * `waitForJob` does; both within `timeoutMs`.
 */
export async function waitForBucketJob(
  id: string,
  timeoutMs: number,
  until?: (job: JobView) => boolean,
): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  while (!(await jobExists(id))) {
    if (Date.now() > deadline) throw new Error(`job ${id} did not appear in ${timeoutMs} ms`);
    await sleep(300);
  }
  return waitForJob(id, Math.max(1000, deadline - Date.now()), until);
}

/** Every result entry in input order, from the JSONL stream (read again if the stream drops). */
export async function resultsJsonl(id: string): Promise<ResultEntry[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      const entries: ResultEntry[] = [];
      for await (const entry of jobsClient().resultsJsonl(id)) entries.push(entry);
      return entries;
    } catch (err) {
      if (attempt >= 4) throw err;
    }
  }
}

/**
 * Reads the event stream to its `done` event, or until `stopAfter` results (then it closes the
 * connection); returns the result events' data and ids, and the job `done` carried.
 */
export async function readEvents(
  id: string,
  lastEventId?: string,
  stopAfter = Number.POSITIVE_INFINITY,
): Promise<{ results: Array<{ id: string; data: ResultLine }>; done?: JobView }> {
  const results: Array<{ id: string; data: ResultLine }> = [];
  let done: JobView | undefined;
  let resumeFrom = lastEventId;
  // A dropped stream is resumed from the last event seen, as EventSource does with Last-Event-ID.
  for (let drops = 0; !done && results.length < stopAfter; drops++) {
    try {
      for await (const event of jobsClient().events(id, resumeFrom ? { lastEventId: resumeFrom } : {})) {
        if (event.event === 'result') {
          results.push({ id: event.id ?? '', data: event.data });
          resumeFrom = event.id ?? resumeFrom;
        } else done = event.data;
        if (done || results.length >= stopAfter) break;
      }
      if (!done && results.length < stopAfter) throw new Error('the event stream ended without done');
    } catch (err) {
      if (drops >= 3) throw err;
    }
  }
  return { results, ...(done ? { done } : {}) };
}

/** What the suite's Gemini stand-in saw, per model. */
export function standInStats(): Promise<StandInStats> {
  return standInControl(stack().geminiBaseUrl).stats();
}

/** Deep-merges `patch` into the suite's Gemini stand-in configuration. */
export async function configureStandIn(patch: unknown): Promise<void> {
  await standInControl(stack().geminiBaseUrl).configure(patch);
}

/**
 * Has Cloud Run's front (the local functions host) refuse every delivery of `queue` with `status`
 * for `seconds`, before the worker sees it (see infra/local/front-faults.ts); `seconds: 0` ends it.
 */
export async function frontFault(queue: string, status: number, seconds: number): Promise<void> {
  const res = await fetch(`${stack().workerUrl.replace(/\/$/, '')}${FRONT_FAULTS_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ queue, status, seconds }),
  });
  if (!res.ok) throw new Error(`front fault answered ${res.status}: ${await res.text()}`);
  // The host's primary hands the fault to every other instance over IPC: give it a moment.
  await new Promise((r) => setTimeout(r, 300));
}

/**
 * A job of `keys.length` items ended with each item succeeded, its results in input order (`keys`),
 * and the stand-in (`stats`, the job's model) sent no 429 and answered no prompt twice.
 */
export function expectEachOnce(job: JobView, lines: ResultEntry[], keys: string[], stats: ModelStats): void {
  const n = keys.length;
  expect(job).toMatchObject({
    status: 'succeeded',
    counts: { total: n, succeeded: n, failed: 0, cancelled: 0, pending: 0 },
  });
  expect(lines.map((l) => entryKey(l))).toEqual(keys);
  expect(stats.rejected429).toBe(0);
  expect(stats.answeredAgain).toBe(0);
}
