import { randomBytes } from 'node:crypto';
import { entityNotFound, invalidArgument, StandInHttpError } from './errors.js';

/**
 * Vertex AI batch prediction (`projects.locations.batchPredictionJobs`) for Gemini, as the stand-in's
 * Vertex mode serves it: a job reads one JSONL file from Cloud Storage (`inputConfig.gcsSource.uris`,
 * lines `{"request": GenerateContentRequest}`), and writes
 * `{outputUriPrefix}/prediction-model-{time}/predictions.jsonl` (`outputInfo.gcsOutputDirectory`),
 * one line per input line, `{"status": "", "processed_time", "request", "response"}`, or a non-empty
 * `status` (the error) and no response (Vertex AI, "Batch inference from Cloud Storage": output). The
 * request is echoed whole, labels included: that is how a caller joins lines back. States are
 * `JOB_STATE_*`; `completionStats` counts successful, failed and incomplete lines (int64 strings).
 * Cloud Storage is the local storage emulator, read and written through its JSON API.
 */

type State =
  | 'JOB_STATE_PENDING'
  | 'JOB_STATE_RUNNING'
  | 'JOB_STATE_SUCCEEDED'
  | 'JOB_STATE_FAILED'
  | 'JOB_STATE_CANCELLED';

interface Job {
  id: string;
  parent: string;
  displayName: string;
  model: string;
  input: string;
  outputPrefix: string;
  state: State;
  createTime: number;
  outputDirectory?: string;
  stats?: { successful: number; failed: number };
  error?: { code: number; message: string };
}

export interface VertexBatchOptions {
  clock: () => number;
  /** The storage emulator's base URL (`STORAGE_EMULATOR_HOST`); none: jobs fail reading input. */
  storageUrl: () => string | null;
  /** How long a job stays PENDING, then RUNNING. */
  timings: () => { pendingMs: number; runningMs: number };
  /** The answer to one valid request (throws a StandInHttpError for an invalid one). */
  answer: (model: string, request: unknown) => Record<string, unknown>;
}

const GS = /^gs:\/\/([^/]+)\/(.+)$/;

/** `/{v1|v1beta1}/projects/{p}/locations/{l}/batchPredictionJobs[/{id}][:cancel]`. */
export const BATCH_JOBS_PATH =
  /^\/(v1|v1beta1)\/(projects\/([^/]+)\/locations\/[^/]+)\/batchPredictionJobs(?:\/([^/:]+))?(:cancel)?$/;

export class VertexBatchJobs {
  private readonly jobs = new Map<string, Job>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly options: VertexBatchOptions) {}

  /** `POST {parent}/batchPredictionJobs`. */
  create(parent: string, body: unknown): Record<string, unknown> {
    const b = body as {
      displayName?: string;
      model?: string;
      inputConfig?: { instancesFormat?: string; gcsSource?: { uris?: string[] } };
      outputConfig?: { predictionsFormat?: string; gcsDestination?: { outputUriPrefix?: string } };
    };
    const uris = b.inputConfig?.gcsSource?.uris ?? [];
    const prefix = b.outputConfig?.gcsDestination?.outputUriPrefix;
    if (!b.displayName) throw invalidArgument('displayName is required.');
    if (!b.model?.startsWith('publishers/google/models/')) throw invalidArgument(`Invalid model: ${b.model}`);
    if (b.inputConfig?.instancesFormat !== 'jsonl' || uris.length !== 1 || !GS.test(uris[0]!))
      throw invalidArgument('inputConfig must name one gs:// JSONL file (instancesFormat jsonl).');
    if (b.outputConfig?.predictionsFormat !== 'jsonl' || !prefix || !GS.test(prefix))
      throw invalidArgument('outputConfig must name a gs:// outputUriPrefix (predictionsFormat jsonl).');
    const job: Job = {
      id: String(BigInt(`0x${randomBytes(7).toString('hex')}`)),
      parent,
      displayName: b.displayName,
      model: b.model.slice('publishers/google/models/'.length),
      input: uris[0]!,
      outputPrefix: prefix.replace(/\/+$/, ''),
      state: 'JOB_STATE_PENDING',
      createTime: this.options.clock(),
    };
    this.jobs.set(job.id, job);
    const { pendingMs, runningMs } = this.options.timings();
    this.after(pendingMs, () => {
      if (job.state !== 'JOB_STATE_PENDING') return;
      job.state = 'JOB_STATE_RUNNING';
      this.after(runningMs, () => void this.run(job));
    });
    return this.resource(job);
  }

  get(parent: string, id: string): Record<string, unknown> {
    return this.resource(this.require(parent, id));
  }

  /** Newest first, paged by `pageSize` with the next index as the token. */
  list(parent: string, pageSize = 100, pageToken?: string): Record<string, unknown> {
    const all = [...this.jobs.values()].filter((j) => j.parent === parent).reverse();
    const from = pageToken ? Number(pageToken) : 0;
    const page = all.slice(from, from + pageSize);
    const next = from + page.length < all.length ? { nextPageToken: String(from + page.length) } : {};
    return { batchPredictionJobs: page.map((j) => this.resource(j)), ...next };
  }

  cancel(parent: string, id: string): void {
    const job = this.require(parent, id);
    if (job.state === 'JOB_STATE_PENDING' || job.state === 'JOB_STATE_RUNNING')
      job.state = 'JOB_STATE_CANCELLED';
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
  }

  private require(parent: string, id: string): Job {
    const job = this.jobs.get(id);
    if (!job || job.parent !== parent) throw entityNotFound();
    return job;
  }

  private after(ms: number, then: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      then();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** Reads the input, answers each line, writes the predictions file; FAILED when storage fails. */
  private async run(job: Job): Promise<void> {
    if (job.state !== 'JOB_STATE_RUNNING') return;
    try {
      const input = await this.readObject(job.input);
      const out: string[] = [];
      let successful = 0;
      for (const text of input.split('\n')) {
        if (text.trim() === '') continue;
        const line = this.predict(job.model, text);
        if (line.status === '') successful++;
        out.push(JSON.stringify(line));
      }
      const directory = `${job.outputPrefix}/prediction-model-${new Date(this.options.clock()).toISOString().replace(/[:.]/g, '-')}`;
      await this.writeObject(`${directory}/predictions.jsonl`, out.map((l) => `${l}\n`).join(''));
      if (job.state !== 'JOB_STATE_RUNNING') return;
      job.outputDirectory = directory;
      job.stats = { successful, failed: out.length - successful };
      job.state = 'JOB_STATE_SUCCEEDED';
    } catch (error) {
      job.state = 'JOB_STATE_FAILED';
      job.error = { code: 3, message: `Batch prediction failed: ${(error as Error).message}` };
    }
  }

  private predict(model: string, text: string): Record<string, unknown> {
    const processed_time = new Date(this.options.clock()).toISOString();
    let request: unknown;
    try {
      request = (JSON.parse(text) as { request?: unknown }).request;
      if (typeof request !== 'object' || request === null)
        throw invalidArgument('Each line needs a request.');
      return { status: '', processed_time, request, response: this.options.answer(model, request) };
    } catch (error) {
      const message = error instanceof StandInHttpError ? error.message : 'Invalid JSON line.';
      return { status: `Bad Request: ${message}`, processed_time, ...(request ? { request } : {}) };
    }
  }

  private async readObject(uri: string): Promise<string> {
    const [, bucket, name] = GS.exec(uri) ?? [];
    const res = await fetch(
      `${this.storage()}/storage/v1/b/${bucket}/o/${encodeURIComponent(name!)}?alt=media`,
    );
    if (!res.ok) throw new Error(`reading ${uri}: HTTP ${res.status}`);
    return res.text();
  }

  private async writeObject(uri: string, body: string): Promise<void> {
    const [, bucket, name] = GS.exec(uri) ?? [];
    const url = `${this.storage()}/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(name!)}`;
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/jsonl' }, body });
    if (!res.ok) throw new Error(`writing ${uri}: HTTP ${res.status}`);
  }

  private storage(): string {
    const url = this.options.storageUrl();
    if (!url) throw new Error('no Cloud Storage to read from');
    return url.replace(/\/+$/, '');
  }

  private resource(job: Job): Record<string, unknown> {
    const iso = (ms: number) => new Date(ms).toISOString();
    const s = job.stats;
    return {
      name: `${job.parent}/batchPredictionJobs/${job.id}`,
      displayName: job.displayName,
      model: `publishers/google/models/${job.model}`,
      inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: [job.input] } },
      outputConfig: { predictionsFormat: 'jsonl', gcsDestination: { outputUriPrefix: job.outputPrefix } },
      state: job.state,
      createTime: iso(job.createTime),
      updateTime: iso(this.options.clock()),
      ...(job.outputDirectory ? { outputInfo: { gcsOutputDirectory: job.outputDirectory } } : {}),
      ...(s
        ? {
            completionStats: {
              successfulCount: String(s.successful),
              failedCount: String(s.failed),
              incompleteCount: '0',
            },
          }
        : {}),
      ...(job.error ? { error: job.error } : {}),
    };
  }
}
