/**
 * A watched job's progress, from two sources: the `result` events of the stream (live, one per
 * finished item) and the occasional `GET /jobs/{id}` (authoritative counts, tokens, cost, quota).
 * Whichever has seen more finished items gives the counts. Pure: time comes in as `now`.
 */
import type { JobStatus, JobView, ResultLine } from '../functions/api/jobs.js';
import { type StepSnapshot, stepSnapshots } from './steps.js';

/** How far back the request rate looks. Gemini's quotas hold over any rolling minute. */
const RATE_WINDOW_MS = 60_000;

export interface ProgressSnapshot {
  id: string;
  status: JobStatus;
  mode: string;
  model: string;
  total: number;
  done: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  pending: number;
  elapsedMs: number;
  /** Items finished per minute over the last minute (null until there is something to measure). */
  requestsPerMin: number | null;
  /** Input tokens per minute over the last minute, from the job's usage. */
  tokensPerMin: number | null;
  /** The model's quota, when the server reports it. */
  quota: { rpm: number; tpm: number } | null;
  promptTokens: number;
  outputTokens: number;
  costUsd: number;
  /** Time left at the current rate; null when there is no rate yet. */
  etaMs: number | null;
  notice: string | null;
  /** Batch jobs: the state of each batch. */
  batches: string[];
  /** A pipeline's steps, in order, as the latest job view has them (none for a job without steps). */
  steps: StepSnapshot[];
}

interface Sample {
  at: number;
  value: number;
}

export class JobProgress {
  private view: JobView;
  private readonly tally = { succeeded: 0, failed: 0, cancelled: 0 };
  private readonly doneSamples: Sample[] = [];
  private readonly tokenSamples: Sample[] = [];

  /** `view` is the job when watching starts, at `now`: rates are measured from there. */
  constructor(view: JobView, now: number) {
    this.view = view;
    this.doneSamples.push({ at: now, value: doneOf(view) });
    this.tokenSamples.push({ at: now, value: view.usage.promptTokens });
  }

  /** A `result` event. */
  result(line: ResultLine, now: number): void {
    if ('response' in line) this.tally.succeeded++;
    else if (line.error.status === 'CANCELLED') this.tally.cancelled++;
    else this.tally.failed++;
    push(this.doneSamples, { at: now, value: this.counts().done });
  }

  /** A fresh `GET /jobs/{id}` (or the `done` event's job). */
  job(view: JobView, now: number): void {
    // A job from a server that leaves out the quota keeps the one known.
    const quota = view.quota ?? this.view.quota;
    this.view = quota === undefined ? view : { ...view, quota };
    push(this.doneSamples, { at: now, value: this.counts().done });
    push(this.tokenSamples, { at: now, value: view.usage.promptTokens });
  }

  get latest(): JobView {
    return this.view;
  }

  snapshot(now: number): ProgressSnapshot {
    const view = this.view;
    const c = this.counts();
    const requestsPerMin = ratePerMin(this.doneSamples, now);
    const pending = Math.max(0, view.counts.total - c.done);
    return {
      id: view.id,
      status: view.status,
      mode: view.mode,
      model: view.model,
      total: view.counts.total,
      ...c,
      pending,
      elapsedMs: elapsedMs(view, now),
      requestsPerMin,
      tokensPerMin: ratePerMin(this.tokenSamples, now),
      quota: view.quota ? { rpm: view.quota.rpm, tpm: view.quota.tpm } : null,
      promptTokens: view.usage.promptTokens,
      outputTokens: view.usage.outputTokens,
      costUsd: view.costUsd,
      etaMs: pending === 0 ? 0 : requestsPerMin ? Math.round((pending / requestsPerMin) * 60_000) : null,
      notice: view.notice,
      batches: (view.batches ?? []).map((b) => b.state.toLowerCase()),
      steps: stepSnapshots(view),
    };
  }

  private counts() {
    const fromView = this.view.counts;
    const tallied = this.tally.succeeded + this.tally.failed + this.tally.cancelled;
    if (doneOf(this.view) >= tallied) {
      return {
        done: doneOf(this.view),
        succeeded: fromView.succeeded,
        failed: fromView.failed,
        cancelled: fromView.cancelled,
      };
    }
    return { done: tallied, ...this.tally };
  }
}

/** The job's age by the server's clock, or its wall time once finished. */
export function elapsedMs(view: JobView, now: number): number {
  const end = view.finishedAt ? Date.parse(view.finishedAt) : now;
  return Math.max(0, end - Date.parse(view.createdAt));
}

function doneOf(view: JobView): number {
  return view.counts.succeeded + view.counts.failed + view.counts.cancelled;
}

/** Keeps the samples of the rate window, and the last one before it as the baseline. */
function push(samples: Sample[], sample: Sample): void {
  samples.push(sample);
  while (samples.length > 2 && samples[1]!.at < sample.at - RATE_WINDOW_MS) samples.shift();
}

function ratePerMin(samples: Sample[], now: number): number | null {
  const first = samples[0];
  const last = samples[samples.length - 1];
  if (!first || !last) return null;
  const span = Math.max(now, last.at) - first.at;
  if (span < 1000 || last.value === first.value) return span < 1000 ? null : 0;
  return ((last.value - first.value) / span) * 60_000;
}

// Formatting

/** 950 → "950", 12_345 → "12.3k", 4_000_000 → "4M". */
export function compact(n: number): string {
  if (n < 1000) return String(Math.round(n));
  const [div, unit] = n < 1e6 ? [1e3, 'k'] : n < 1e9 ? [1e6, 'M'] : [1e9, 'G'];
  const v = n / div;
  return `${v < 10 ? Number(v.toFixed(1)) : Math.round(v)}${unit}`;
}

/** 4_200 → "4s", 185_000 → "3m05s", 3_720_000 → "1h02m". */
export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Dollars: four decimals below $1 (a job of a few prompts costs fractions of a cent), two above. */
export function dollars(usd: number): string {
  return `$${usd < 1 ? usd.toFixed(4) : usd.toFixed(2)}`;
}

/**
 * The progress as one line (no bar): counts, the request and token rates against the model's quota,
 * tokens, cost, elapsed time and ETA.
 */
export function progressText(s: ProgressSnapshot): string {
  // The Batch API does not draw on the model's per-minute quota: a batch job's rate is items a minute.
  const quota = s.mode === 'batch' ? null : s.quota;
  const parts = [
    `${s.done}/${s.total} ok ${s.succeeded} failed ${s.failed}${s.cancelled ? ` cancelled ${s.cancelled}` : ''} pending ${s.pending}`,
    rate(s.requestsPerMin, quota?.rpm, 'rpm'),
    ...(quota ? [rate(s.tokensPerMin, quota.tpm, 'tpm')] : []),
    `tokens ${compact(s.promptTokens)} in ${compact(s.outputTokens)} out`,
    dollars(s.costUsd),
    `${duration(s.elapsedMs)} ETA ${s.etaMs === null ? '?' : duration(s.etaMs)}`,
  ];
  if (s.batches.length) parts.push(`batches ${s.batches.join(',')}`);
  if (s.notice) parts.push(s.notice);
  return parts.join(' | ');
}

function rate(value: number | null, quota: number | undefined, unit: string): string {
  const v = value === null ? '-' : compact(value);
  return quota ? `${v}/${compact(quota)} ${unit}` : `${v} ${unit}`;
}
