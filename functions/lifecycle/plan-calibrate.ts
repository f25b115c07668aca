import type { ItemRecord, JobRecord } from '../core/jobs.js';
import type { Quotas } from '../core/quotas.js';
import { NO_EVIDENCE, type TokenEvidence } from '../core/token-evidence.js';
import { calibrationSample, estimateContentTokens, pageRatio } from '../core/tokens.js';
import type { GeminiClient } from '../platform/gemini/client.js';
import type { Logger } from '../platform/logger.js';
import type { Stores } from '../platform/store/index.js';

/**
 * The planner's token side: how far a page's token estimates are to be trusted before its slots are
 * reserved, from Gemini's count of a sample of the page and what answers have counted so far (the
 * job's own, else its model's on the ledger).
 */
export interface CalibrateDeps {
  stores: Pick<Stores, 'jobs' | 'ledger' | 'counters'>;
  /** Gemini's token count, to calibrate estimates before planning; without it estimates are trusted. */
  counter?: Pick<GeminiClient, 'countTokens'>;
  quotas: Quotas;
  logger: Logger;
}

/** A page's calibration: the ratio it is planned with, and the job's own evidence when it was read. */
export interface Calibration {
  ratio: number | undefined;
  jobEvidence: TokenEvidence | undefined;
}

export function createCalibrator(deps: CalibrateDeps) {
  const { jobs, ledger, counters } = deps.stores;

  /** A page's countTokens sample: each sampled item's estimate and Gemini's count (none: no counter). */
  const countSample = async (job: JobRecord, page: ItemRecord[]) => {
    const sample = deps.counter ? calibrationSample(page) : [];
    try {
      return await Promise.all(
        sample.map(async (i) => ({
          estimated: estimateContentTokens(i.request),
          counted: await deps.counter!.countTokens(job.model, i.request),
        })),
      );
    } catch (err) {
      deps.logger.warn(
        { event: 'plan.calibration_failed', jobId: job.id, err: (err as Error).message },
        'countTokens failed; planning with the evidence or the ratio seen so far',
      );
      return [];
    }
  };

  /**
   * The evidence a page is planned by: the job's own answers once there are enough of them, else
   * its model's (earlier jobs', folded into the ledger as jobs plan and finish). A failed read is
   * no evidence: the page is planned by its sample.
   */
  const evidenceFor = async (job: JobRecord) => {
    const { minItems } = deps.quotas.tokenMargin;
    const readFailed = (err: Error) => {
      deps.logger.warn(
        { event: 'plan.evidence_failed', jobId: job.id, err: err.message },
        'could not read what answers counted; planning by the sample',
      );
      return NO_EVIDENCE;
    };
    // Undefined when unread: folding "nothing" would record the job's evidence as folded at zero.
    const jobEvidence = await counters.evidence(job.id, job.counterShards).catch((err: Error) => {
      readFailed(err);
      return undefined;
    });
    if (jobEvidence && jobEvidence.items >= minItems)
      return { jobEvidence, evidence: jobEvidence, scope: 'job' };
    const model = await ledger.evidence(job.model).catch(readFailed);
    return { jobEvidence, evidence: model, scope: 'model' };
  };

  /**
   * The ratio of Gemini's token count to the estimate for this page (`pageRatio`, core/tokens.ts):
   * what the job's answers have counted, with a margin that shrinks as they accumulate, when this
   * page's countTokens sample looks like them; else the sample's highest ratio with a fixed margin,
   * so the TPM plan holds whatever the script or the model's tokenizer. The job keeps the highest
   * ratio seen, for single items planned again later. With neither, what the job has seen, else the
   * estimate.
   */
  return async function calibrate(job: JobRecord, page: ItemRecord[]): Promise<Calibration> {
    const quota = deps.quotas.models[job.model]!;
    const [sample, { jobEvidence, evidence, scope }] = await Promise.all([
      countSample(job, page),
      evidenceFor(job),
    ]);
    const { ratio, source } = pageRatio({
      // Other jobs' answers speak for a page only when its own sample can say it is like them (a
      // page of media items has none: its estimates are defaults, not text like theirs).
      evidence: scope === 'model' && sample.length === 0 ? NO_EVIDENCE : evidence,
      sample,
      estimates: page.map((i) => i.estimatedTokens),
      budget: Math.floor(quota.tpm * deps.quotas.headroom),
      settings: deps.quotas.tokenMargin,
    });
    if (ratio === undefined) return { ratio: job.tokenRatio, jobEvidence };
    if (ratio > (job.tokenRatio ?? 0)) {
      await jobs.setTokenRatio(job.id, ratio);
      job.tokenRatio = ratio;
    }
    deps.logger.debug(
      {
        event: 'plan.calibrated',
        jobId: job.id,
        ratio,
        source: source === 'evidence' ? scope : source,
        sample: sample.length,
        answers: evidence.items,
      },
      'token estimates calibrated',
    );
    return { ratio, jobEvidence };
  };
}
