import type { GenerateContentRequest, MediaRef } from './jobs.js';
import { inlineMediaTokens, referencedMediaTokens } from './media-tokens.js';
import {
  DEFAULT_MARGIN,
  learnedRatio,
  type MarginSettings,
  RATIO_BOUNDS,
  sampleAgrees,
  type TokenEvidence,
  windowItems,
} from './token-evidence.js';

/**
 * Estimated input tokens of a request: one token per 4 UTF-8 bytes of text (Gemini's published rule
 * of thumb); media by Gemini's rule per type as far as the request shows it, and a planning default
 * per type where it does not (`fileData` parts and the media the worker fetches at send time): see
 * `media-tokens.ts`. Used to budget TPM before calling, so it errs high; the response's
 * usageMetadata is what gets billed and reported.
 */
export function estimateInputTokens(request: GenerateContentRequest, media: MediaRef[] = []): number {
  let tokens = 0;
  const countParts = (parts: GenerateContentRequest['contents'][number]['parts']) => {
    for (const part of parts) {
      if (typeof part.text === 'string') tokens += Math.ceil(Buffer.byteLength(part.text, 'utf8') / 4);
      else if (part.inlineData) tokens += inlineMediaTokens(part.inlineData.mimeType, part.inlineData.data);
      else if (part.fileData) tokens += referencedMediaTokens(part.fileData.mimeType, part.fileData.fileUri);
    }
  };
  for (const content of request.contents) countParts(content.parts);
  if (request.systemInstruction) countParts(request.systemInstruction.parts);
  for (const ref of media) tokens += referencedMediaTokens(ref.mimeType, ref.url ?? ref.gcsUri);
  return tokens;
}

/** Items of a page whose tokens are counted by Gemini (`countTokens`) before the page is planned. */
export const CALIBRATION_SAMPLE = 12;

/**
 * What the plan adds on top of the sampled ratio while the job has no evidence of its own (see
 * {@link pageRatio}): items it did not count may run a little higher.
 */
export const CALIBRATION_MARGIN = 1.05;

/**
 * Which items of a page to count: up to `size` of them, spread evenly over the page (inputs often
 * change along a file), text only (media is fetched by the worker at send time).
 */
export function calibrationSample<T extends { media?: MediaRef[] }>(
  items: T[],
  size = CALIBRATION_SAMPLE,
): T[] {
  const text = items.filter((i) => !i.media || i.media.length === 0);
  if (text.length <= size) return text;
  return Array.from({ length: size }, (_, n) => text[Math.floor((n * text.length) / size)]!);
}

/**
 * The ratio the plan multiplies estimates by: the highest counted/estimated of the sample (a page
 * mixing scripts is planned for its costliest kind), with a margin, within bounds. Undefined when
 * nothing was counted.
 */
export function calibrationRatio(
  samples: ReadonlyArray<{ estimated: number; counted: number }>,
): number | undefined {
  const ratios = samples.filter((s) => s.estimated > 0 && s.counted > 0).map((s) => s.counted / s.estimated);
  if (ratios.length === 0) return undefined;
  const r = Math.max(...ratios) * CALIBRATION_MARGIN;
  return Math.min(RATIO_BOUNDS.max, Math.max(RATIO_BOUNDS.min, Math.round(r * 1000) / 1000));
}

/** A page's ratio, and what it rests on. */
export interface PageRatio {
  ratio: number | undefined;
  /** `evidence`: the job's answers; `sample`: this page's countTokens sample; `none`: neither. */
  source: 'evidence' | 'sample' | 'none';
}

/**
 * The ratio a page is planned at. With enough answered items whose counts agree with the page's
 * sample (or with no sample), the ratio the evidence earns (`learnedRatio`: the window's aggregate
 * ratio plus a spread that shrinks with evidence, see `token-evidence.ts`); otherwise, as a fresh job
 * is, the sample's highest ratio × {@link CALIBRATION_MARGIN} (a page unlike what was answered: the
 * inputs changed along the file). `estimates` are the page's items, `budget` the window's tokens.
 */
export function pageRatio(input: {
  evidence: TokenEvidence;
  sample: ReadonlyArray<{ estimated: number; counted: number }>;
  estimates: readonly number[];
  budget: number;
  settings?: MarginSettings;
}): PageRatio {
  const settings = input.settings ?? DEFAULT_MARGIN;
  const sampled = calibrationRatio(input.sample);
  const trial = learnedRatio(input.evidence, 1, settings);
  if (trial !== undefined && sampleAgrees(input.evidence, input.sample, settings)) {
    const n = windowItems(input.estimates, input.budget, trial);
    return { ratio: learnedRatio(input.evidence, n, settings), source: 'evidence' };
  }
  if (sampled !== undefined) return { ratio: sampled, source: 'sample' };
  return { ratio: undefined, source: 'none' };
}

/** The tokens a plan reserves for an item: its estimate times the calibrated ratio. */
export function plannedTokens(estimated: number, ratio: number | undefined): number {
  return Math.ceil(estimated * (ratio ?? 1));
}

/** The estimate of the part of a request `countTokens` counts (its contents). */
export function estimateContentTokens(request: GenerateContentRequest): number {
  return estimateInputTokens({ contents: request.contents });
}
