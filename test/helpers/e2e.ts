import { inject } from 'vitest';
import type { StackInfo } from '../../infra/local/stack.js';

/** Client helpers for e2e tests: plain HTTP against the local cloud's ingest function. */
export function stack(): StackInfo {
  return inject('stack');
}

export interface Json {
  status: number;
  body: Record<string, unknown> & { [k: string]: unknown };
}

export async function call(method: string, path: string, body?: unknown): Promise<Json> {
  const res = await fetch(`${stack().ingestUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

export interface JobView {
  id: string;
  status: string;
  counts: { total: number; succeeded: number; failed: number; cancelled: number; pending: number };
  usage: { promptTokens: number; outputTokens: number };
  costUsd: number;
  notice: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export async function createJob(body: unknown): Promise<string> {
  const res = await call('POST', '/jobs', body);
  if (res.status !== 202) throw new Error(`POST /jobs answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

export async function getJob(id: string): Promise<JobView> {
  return (await call('GET', `/jobs/${id}`)).body as unknown as JobView;
}

/** Polls until the job is terminal (or `until` says so). */
export async function waitForJob(
  id: string,
  timeoutMs: number,
  until: (job: JobView) => boolean = (j) => ['succeeded', 'failed', 'cancelled'].includes(j.status),
): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await getJob(id);
    if (until(job)) return job;
    if (Date.now() > deadline)
      throw new Error(`job ${id} not done after ${timeoutMs} ms: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function resultsJsonl(id: string): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`${stack().ingestUrl}/jobs/${id}/results?format=jsonl`);
  const text = await res.text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** Reads the SSE stream to its `done` event; returns the result events' data and ids. */
export async function readEvents(
  id: string,
  lastEventId?: string,
  stopAfter = Number.POSITIVE_INFINITY,
): Promise<{
  results: Array<{ id: string; data: Record<string, unknown> }>;
  done?: Record<string, unknown>;
}> {
  const controller = new AbortController();
  const res = await fetch(`${stack().ingestUrl}/jobs/${id}/events`, {
    headers: lastEventId ? { 'last-event-id': lastEventId } : {},
    signal: controller.signal,
  });
  const results: Array<{ id: string; data: Record<string, unknown> }> = [];
  let done: Record<string, unknown> | undefined;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut = buffer.indexOf('\n\n');
    while (cut >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const field = (name: string) =>
        frame
          .split('\n')
          .find((l) => l.startsWith(`${name}: `))
          ?.slice(name.length + 2);
      const event = field('event');
      const data = field('data');
      if (event === 'result' && data) results.push({ id: field('id') ?? '', data: JSON.parse(data) });
      if (event === 'done' && data) done = JSON.parse(data);
      if (done || results.length >= stopAfter) break;
      cut = buffer.indexOf('\n\n');
    }
    if (done || results.length >= stopAfter) break;
  }
  controller.abort();
  return { results, ...(done ? { done } : {}) };
}

export async function standInStats(): Promise<{
  models: Record<
    string,
    {
      requests: number;
      admitted: number;
      rejected429: number;
      peakRequestsPer60s: number;
      peakInputTokensPer60s?: number;
      faults: Record<string, number>;
    }
  >;
}> {
  return (await fetch(`${stack().geminiBaseUrl}/__standin/stats`)).json() as never;
}

export async function configureStandIn(patch: unknown): Promise<void> {
  const res = await fetch(`${stack().geminiBaseUrl}/__standin/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(patch),
  });
  if (!res.ok) throw new Error(`stand-in config answered ${res.status}: ${await res.text()}`);
}
