/** What the stand-in saw for one model. All counts since start or the last reset. */
export interface ModelStats {
  /** Realtime requests (generateContent + streamGenerateContent) that named this (known) model. */
  requests: number;
  /** Requests the quota windows admitted (the ones that count against RPM/TPM/RPD). */
  admitted: number;
  /** Requests answered with a model response. */
  succeeded: number;
  /**
   * Answers delivered for contents that had been answered before (same contents, 200 both times):
   * a client that loses nothing and retries nothing it received keeps this at 0 for unique prompts.
   */
  answeredAgain: number;
  /**
   * The first answers given again: the prompt (its first 60 characters) and when it was first and
   * again answered (epoch ms), to tell which ones and why (e.g. the first answer went to an instance
   * that was killed before it could store it).
   */
  answeredAgainDetails: Array<{ prompt: string; firstMs: number; againMs: number }>;
  /** 429s, total and by quotaId (a 429 naming several quotas counts once per quotaId). */
  rejected429: number;
  rejected429ByQuotaId: Record<string, number>;
  /** Injected or marker faults by kind: `400`, `500`, `503`, `timeout`, `malformed`. */
  faults: Record<string, number>;
  /** Input tokens of admitted requests; output tokens of answers sent. */
  inputTokens: number;
  outputTokens: number;
  /** Arriving requests per epoch second. */
  requestsPerSecond: Array<{ second: number; count: number }>;
  /** Most requests that arrived within any rolling 60 s window (rejected ones included). */
  peakRequestsPer60s: number;
  /** Most admitted requests within any rolling 60 s window: what upstream would count for RPM. */
  peakAdmittedPer60s: number;
  /** Most admitted input tokens within any rolling 60 s window: what upstream would count for TPM. */
  peakInputTokensPer60s: number;
  countTokensRequests: number;
  /** Batches created for this model and the requests they carried (not counted as realtime). */
  batchesCreated: number;
  batchRequests: number;
}

/** The body of `GET /__standin/stats`. */
export interface StandInStats {
  since: string;
  totalRequests: number;
  models: Record<string, ModelStats>;
}

/** What is kept per model: the counters as reported, and the times the peaks are derived from. */
interface ModelLog
  extends Pick<
    ModelStats,
    | 'succeeded'
    | 'answeredAgain'
    | 'answeredAgainDetails'
    | 'rejected429'
    | 'rejected429ByQuotaId'
    | 'faults'
    | 'outputTokens'
    | 'countTokensRequests'
    | 'batchesCreated'
    | 'batchRequests'
  > {
  arrivals: number[];
  admittedTimes: number[];
  admittedTokens: number[];
  perSecond: Map<number, number>;
  /** Contents hash → when it was first answered. */
  answered: Map<string, number>;
}

const WINDOW_MS = 60_000;

/** Distinct answered requests remembered per model, for `answeredAgain` (bounded memory). */
const ANSWERED_MEMORY = 200_000;

/** Largest sum of `weights` (1 each when absent) over any window (t - 60 s, t] of sorted `times`. */
function peakOverWindow(times: number[], weights?: number[]): number {
  let best = 0;
  let sum = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    sum += weights ? (weights[end] as number) : 1;
    while ((times[start] as number) <= (times[end] as number) - WINDOW_MS) {
      sum -= weights ? (weights[start] as number) : 1;
      start++;
    }
    if (sum > best) best = sum;
  }
  return best;
}

/**
 * Records every realtime request with its time, so peaks over any rolling minute are exact (not
 * bucketed): benchmarks use them to prove a system stays under a quota.
 */
export class StatsRecorder {
  private models = new Map<string, ModelLog>();
  private since: number;

  constructor(private readonly clock: () => number) {
    this.since = clock();
  }

  private log(model: string): ModelLog {
    let log = this.models.get(model);
    if (!log) {
      log = {
        arrivals: [],
        admittedTimes: [],
        admittedTokens: [],
        perSecond: new Map(),
        succeeded: 0,
        answered: new Map(),
        answeredAgain: 0,
        answeredAgainDetails: [],
        rejected429: 0,
        rejected429ByQuotaId: {},
        faults: {},
        outputTokens: 0,
        countTokensRequests: 0,
        batchesCreated: 0,
        batchRequests: 0,
      };
      this.models.set(model, log);
    }
    return log;
  }

  arrived(model: string): void {
    const log = this.log(model);
    const now = this.clock();
    log.arrivals.push(now);
    const second = Math.floor(now / 1000);
    log.perSecond.set(second, (log.perSecond.get(second) ?? 0) + 1);
  }

  admitted(model: string, inputTokens: number): void {
    const log = this.log(model);
    log.admittedTimes.push(this.clock());
    log.admittedTokens.push(inputTokens);
  }

  rejected(model: string, quotaIds: string[]): void {
    const log = this.log(model);
    log.rejected429++;
    for (const id of quotaIds) log.rejected429ByQuotaId[id] = (log.rejected429ByQuotaId[id] ?? 0) + 1;
  }

  fault(model: string, kind: string): void {
    const log = this.log(model);
    log.faults[kind] = (log.faults[kind] ?? 0) + 1;
  }

  /**
   * An answer sent whole to a client still connected (the response finished writing). `contentsHash`
   * identifies the request; at most {@link ANSWERED_MEMORY} hashes per model are remembered.
   */
  delivered(model: string, contentsHash: string, prompt: string): void {
    const log = this.log(model);
    const first = log.answered.get(contentsHash);
    if (first !== undefined) {
      log.answeredAgain++;
      if (log.answeredAgainDetails.length < 100)
        log.answeredAgainDetails.push({ prompt: prompt.slice(0, 60), firstMs: first, againMs: this.clock() });
      return;
    }
    if (log.answered.size >= ANSWERED_MEMORY) log.answered.delete(log.answered.keys().next().value as string);
    log.answered.set(contentsHash, this.clock());
  }

  succeeded(model: string, outputTokens: number): void {
    const log = this.log(model);
    log.succeeded++;
    log.outputTokens += outputTokens;
  }

  countTokens(model: string): void {
    this.log(model).countTokensRequests++;
  }

  batchCreated(model: string, requests: number): void {
    const log = this.log(model);
    log.batchesCreated++;
    log.batchRequests += requests;
  }

  /** A snapshot, safe to serialise. */
  snapshot(): StandInStats {
    const models: Record<string, ModelStats> = {};
    let totalRequests = 0;
    for (const [model, log] of this.models) {
      totalRequests += log.arrivals.length;
      models[model] = {
        requests: log.arrivals.length,
        admitted: log.admittedTimes.length,
        succeeded: log.succeeded,
        answeredAgain: log.answeredAgain,
        answeredAgainDetails: [...log.answeredAgainDetails],
        rejected429: log.rejected429,
        rejected429ByQuotaId: { ...log.rejected429ByQuotaId },
        faults: { ...log.faults },
        inputTokens: log.admittedTokens.reduce((a, b) => a + b, 0),
        outputTokens: log.outputTokens,
        requestsPerSecond: [...log.perSecond.entries()]
          .sort((a, b) => a[0] - b[0])
          .map(([second, count]) => ({ second, count })),
        peakRequestsPer60s: peakOverWindow(log.arrivals),
        peakAdmittedPer60s: peakOverWindow(log.admittedTimes),
        peakInputTokensPer60s: peakOverWindow(log.admittedTimes, log.admittedTokens),
        countTokensRequests: log.countTokensRequests,
        batchesCreated: log.batchesCreated,
        batchRequests: log.batchRequests,
      };
    }
    return { since: new Date(this.since).toISOString(), totalRequests, models };
  }

  /** Forgets everything recorded so far. */
  reset(): void {
    this.models = new Map();
    this.since = this.clock();
  }
}
