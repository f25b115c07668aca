import { costUsd, PRICE_TIERS, type PriceTier, tierShare } from './cost.js';
import type { JobMode, NewItem } from './jobs.js';
import type { Quotas } from './quotas.js';
import { spendSeconds } from './spend-pace.js';

/**
 * A dry run's answer (`POST /jobs?dryRun=true`), pure: what a job would take, from the items as
 * validated, with nothing stored and nothing called. Input tokens are the product's own estimate
 * (the one the quota plan starts from); output tokens are known only as an upper bound, when every
 * item caps them (`generationConfig.maxOutputTokens`), and the cost includes them only then.
 */
export interface JobEstimate {
  dryRun: true;
  model: string;
  /** The path the job would take (`auto` resolved, by its deadline when it names one). */
  mode: JobMode;
  items: number;
  tokens: { input: number; outputAtMost: number | null; countedBy: 'estimate' };
  /** What the job would cost on each tier (Priority only where the deployment enables it). */
  costUsd: Partial<Record<PriceTier, number>>;
  /** Whether `costUsd` includes the output (at most `tokens.outputAtMost`); input only otherwise. */
  costIncludesOutput: boolean;
  /**
   * The least time the model's quota allows for the queues (RPM and TPM at `headroom`), seconds;
   * with a spend limit (`spendPer10MinUsd`), also what it allows for the job's cost at its tier, its
   * output counted at its caps or `spendPacing.expectedOutputTokens` a item.
   */
  quotaSeconds: number;
  deadline?: string;
}

function outputCap(item: NewItem): number | undefined {
  const cap = (item.request.generationConfig as { maxOutputTokens?: unknown } | undefined)?.maxOutputTokens;
  return typeof cap === 'number' && cap >= 0 ? cap : undefined;
}

/** The estimate of a validated job of `model` taking `mode` (see {@link JobEstimate}). */
export function estimateJob(
  job: { model: string; mode: JobMode; items: NewItem[]; deadlineMs?: number },
  quotas: Quotas,
): JobEstimate {
  const quota = Object.hasOwn(quotas.models, job.model) ? quotas.models[job.model] : undefined;
  const caps = job.items.map(outputCap);
  const capped = caps.every((c) => c !== undefined);
  const input = job.items.reduce((sum, i) => sum + i.estimatedTokens, 0);
  const tiers = PRICE_TIERS.filter((t) => t !== 'priority' || quotas.serviceTiers.priority.enabled);
  const cost: Partial<Record<PriceTier, number>> = {};
  for (const tier of tiers) {
    const share = tierShare(quotas, job.model, tier);
    // Per item: the long-context price depends on each request's own prompt.
    const usd = job.items.reduce(
      (sum, item, n) =>
        sum +
        (quota
          ? costUsd(
              { promptTokens: item.estimatedTokens, outputTokens: capped ? (caps[n] ?? 0) : 0 },
              quota.price,
              share,
            )
          : 0),
      0,
    );
    cost[tier] = Math.round(usd * 1e9) / 1e9;
  }
  const rpm = (quota?.rpm ?? 1) * quotas.headroom;
  const tpm = (quota?.tpm ?? 1) * quotas.headroom;
  return {
    dryRun: true,
    model: job.model,
    mode: job.mode,
    items: job.items.length,
    tokens: {
      input,
      outputAtMost: capped ? caps.reduce<number>((s, c) => s + (c ?? 0), 0) : null,
      countedBy: 'estimate',
    },
    costUsd: cost,
    costIncludesOutput: capped,
    quotaSeconds:
      Math.round(
        Math.max((job.items.length / rpm) * 60, (input / tpm) * 60, spendBound(job, caps, quotas)) * 10,
      ) / 10,
    ...(job.deadlineMs !== undefined ? { deadline: new Date(job.deadlineMs).toISOString() } : {}),
  };
}

/** The seconds the spend limit allows a queued job (0 without a limit, or for the Batch API). */
function spendBound(
  job: { model: string; mode: JobMode; items: NewItem[] },
  caps: Array<number | undefined>,
  quotas: Quotas,
): number {
  const price = Object.hasOwn(quotas.models, job.model) ? quotas.models[job.model]?.price : undefined;
  if (quotas.spendPer10MinUsd === undefined || !price || job.mode === 'batch') return 0;
  const share = tierShare(quotas, job.model, job.mode === 'flex' ? 'flex' : 'standard');
  const output = quotas.spendPacing.expectedOutputTokens;
  const usd = job.items.reduce(
    (sum, item, n) =>
      sum + costUsd({ promptTokens: item.estimatedTokens, outputTokens: caps[n] ?? output }, price, share),
    0,
  );
  return spendSeconds(usd, {
    limitUsd: quotas.spendPer10MinUsd,
    windowSeconds: quotas.spendPacing.windowSeconds,
    headroom: quotas.headroom,
  });
}
