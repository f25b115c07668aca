import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

/** The job summary `GET /jobs/{id}` returns (DESIGN's HTTP API). */
export interface JobSummary {
  id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  mode: string;
  model: string;
  counts: { total: number; succeeded: number; failed: number; cancelled: number; pending: number };
  usage: { promptTokens: number; outputTokens: number };
  costUsd: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  notice: string | null;
}

export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    const message = (body as { error?: { message?: string } })?.error?.message ?? JSON.stringify(body);
    super(`HTTP ${status}: ${message}`);
    this.name = 'ApiCallError';
  }
}

/**
 * A small client of the jobs API, for the local cloud or a deployed one (`token` is an identity
 * token, e.g. from `gcloud auth print-identity-token`, since the deployed function is private).
 */
export function createClient(baseUrl: string, options: { token?: string } = {}) {
  const headers = (extra: Record<string, string> = {}) => ({
    ...extra,
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
  });
  const json = async (res: Response) => {
    const text = await res.text();
    const body = text ? JSON.parse(text) : {};
    if (!res.ok) throw new ApiCallError(res.status, body);
    return body;
  };
  return {
    async submit(body: unknown): Promise<{ id: string; total: number }> {
      return json(
        await fetch(`${baseUrl}/jobs`, {
          method: 'POST',
          headers: headers({ 'content-type': 'application/json' }),
          body: JSON.stringify(body),
        }),
      );
    },
    async get(id: string): Promise<JobSummary> {
      return json(await fetch(`${baseUrl}/jobs/${id}`, { headers: headers() }));
    },
    async cancel(id: string): Promise<JobSummary> {
      return json(await fetch(`${baseUrl}/jobs/${id}/cancel`, { method: 'POST', headers: headers() }));
    },
    /** Every result line in input order, streamed. */
    async resultsJsonl(id: string): Promise<ReadableStream<Uint8Array>> {
      const res = await fetch(`${baseUrl}/jobs/${id}/results?format=jsonl`, { headers: headers() });
      if (!res.ok || !res.body) throw new ApiCallError(res.status, await res.text());
      return res.body;
    },
  };
}

export type FanoutClient = ReturnType<typeof createClient>;

/**
 * Reads a prompt file: one JSON object per line, `{"key"?, "prompt"}` or `{"key", "request"}`, with
 * optional `media`. Blank lines are skipped; a bad line is reported with its number.
 */
export async function readPromptFile(path: string): Promise<Array<Record<string, unknown>>> {
  const requests: Array<Record<string, unknown>> = [];
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (!line.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`${path}:${n}: not valid JSON`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(`${path}:${n}: expected an object like {"prompt": "..."}`);
    }
    const { key, prompt, request, media } = value as Record<string, unknown>;
    requests.push({
      key: key === undefined ? String(requests.length) : String(key),
      ...(prompt !== undefined ? { prompt } : {}),
      ...(request !== undefined ? { request } : {}),
      ...(media !== undefined ? { media } : {}),
    });
  }
  if (requests.length === 0) throw new Error(`${path}: no prompts in the file`);
  return requests;
}

/** One progress line: a bar, counts, throughput. */
export function progressLine(job: JobSummary, elapsedMs: number, width = 30): string {
  const { total, succeeded, failed, cancelled } = job.counts;
  const done = succeeded + failed + cancelled;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const rpm = elapsedMs > 0 ? Math.round((done / elapsedMs) * 60_000) : 0;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}  ok ${succeeded}  failed ${failed}  ${rpm} req/min  ${(elapsedMs / 1000).toFixed(1)} s${job.notice ? `  (${job.notice})` : ''}`;
}
