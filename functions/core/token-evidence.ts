/**
 * The token plan's margin, earned from evidence. TPM binds on the sum of the input tokens sent in a
 * window, so what the plan must bound is Σcounted / Σestimated over the items one window holds, not
 * the costliest single item. Each answered item is a draw of r = counted / estimated; with the e-weighted
 * mean R and spread σ of those draws, a window holding items of estimated mass E_W (n_W = E_W / ē of
 * them, ē the size-biased mean estimate Σe² / Σe) counts R·E_W give or take σ·√(1/n_W + 1/n) of it:
 * the window's own spread plus the uncertainty of R itself after n answers. The plan reserves
 *
 *     ratio = max(R·(1 + floor), R + z·σ·√(1/n_W + 1/n))
 *
 * per estimated token: the margin shrinks as answers accumulate and grows back when they show the
 * estimate off (R and σ both follow what answers count). The sums behind R and σ are additive, so
 * sharded counters hold them (`platform/store/counters.ts`). The rule assumes the items of a window
 * resemble those answered so far: a page whose countTokens sample says otherwise is planned by its
 * sample instead (`pageRatio`).
 */

/** What answers showed of the estimator: sums over answered items, each a plain sum (additive). */
export interface TokenEvidence {
  /** Answered items counted. */
  items: number;
  /** Σ estimated input tokens (the items' `estimatedTokens`). */
  estimated: number;
  /** Σ estimated² (for the effective number of items: big items weigh more). */
  estimatedSq: number;
  /** Σ input tokens Gemini counted (`usageMetadata.promptTokenCount`). */
  counted: number;
  /** Σ counted² / estimated (the e-weighted second moment of counted / estimated). */
  countedSq: number;
}

/** How the margin is earned (`tokenMargin` in infra/quotas.json). */
export interface MarginSettings {
  /** The least margin over the evidence's mean ratio, whatever the evidence: 0.01 is 1%. */
  floor: number;
  /** Standard deviations of the window's count the plan covers (3: about 1 window in 700 over). */
  z: number;
  /** Answered items before the evidence is trusted over a page's countTokens sample. */
  minItems: number;
}

export const DEFAULT_MARGIN: MarginSettings = { floor: 0.01, z: 3, minItems: 30 };

/** Bounds of a ratio: a count that far off is a fault of the sample, not of the estimator. */
export const RATIO_BOUNDS = { min: 0.25, max: 4 };

export const NO_EVIDENCE: TokenEvidence = {
  items: 0,
  estimated: 0,
  estimatedSq: 0,
  counted: 0,
  countedSq: 0,
};

/** The evidence of one answered item (none when either count is missing). */
export function itemEvidence(estimated: number, counted: number): TokenEvidence {
  if (!(estimated > 0) || !(counted > 0)) return NO_EVIDENCE;
  return {
    items: 1,
    estimated,
    estimatedSq: estimated * estimated,
    counted,
    countedSq: (counted * counted) / estimated,
  };
}

/** The sum of pieces of evidence (shards, items). */
export function addEvidence(...parts: Array<Partial<TokenEvidence>>): TokenEvidence {
  const sum = { ...NO_EVIDENCE };
  for (const p of parts)
    for (const k of Object.keys(sum) as Array<keyof TokenEvidence>) sum[k] += Number(p[k] ?? 0) || 0;
  return sum;
}

/** The evidence of a list of (estimated, counted) pairs. */
export function evidenceOf(pairs: ReadonlyArray<{ estimated: number; counted: number }>): TokenEvidence {
  return addEvidence(...pairs.map((p) => itemEvidence(p.estimated, p.counted)));
}

/** The mean ratio R, the per-item spread σ of r, and the effective number of items behind R. */
export function ratioStats(ev: TokenEvidence): { ratio: number; sd: number; n: number } | undefined {
  if (ev.items < 1 || ev.estimated <= 0) return undefined;
  const ratio = ev.counted / ev.estimated;
  const variance = Math.max(0, ev.countedSq / ev.estimated - ratio * ratio);
  // Bessel's correction: a handful of items understates their spread.
  const unbiased = ev.items > 1 ? (variance * ev.items) / (ev.items - 1) : variance;
  const n = ev.estimatedSq > 0 ? (ev.estimated * ev.estimated) / ev.estimatedSq : ev.items;
  return { ratio, sd: Math.sqrt(unbiased), n };
}

/**
 * Items of `estimates`' kind one full window of `budget` tokens holds at `ratio`: the window's mass
 * in estimated tokens over the size-biased mean estimate (at least 1).
 */
export function windowItems(estimates: readonly number[], budget: number, ratio: number): number {
  let sum = 0;
  let sq = 0;
  for (const e of estimates) {
    sum += e;
    sq += e * e;
  }
  if (sum <= 0 || sq <= 0) return 1;
  return Math.max(1, budget / ratio / (sq / sum));
}

const bounded = (r: number) =>
  Math.min(RATIO_BOUNDS.max, Math.max(RATIO_BOUNDS.min, Math.ceil(r * 1000 - 1e-9) / 1000));

/**
 * The ratio the plan multiplies estimates by, from evidence alone (see the module comment); undefined
 * below `minItems` answered items. `windowN` is how many items one window holds ({@link windowItems}).
 */
export function learnedRatio(
  ev: TokenEvidence,
  windowN: number,
  settings: MarginSettings = DEFAULT_MARGIN,
): number | undefined {
  const stats = ratioStats(ev);
  if (!stats || ev.items < settings.minItems) return undefined;
  const spread = settings.z * stats.sd * Math.sqrt(1 / Math.max(1, windowN) + 1 / Math.max(1, stats.n));
  return bounded(Math.max(stats.ratio * (1 + settings.floor), stats.ratio + spread));
}

/**
 * Whether a page's countTokens sample looks like the evidence: its mean ratio within the band the
 * evidence predicts for that many items, and no sampled item above the band one item may reach.
 * Either way off (the inputs changed along the file) and the page is not like what was answered.
 */
export function sampleAgrees(
  ev: TokenEvidence,
  sample: ReadonlyArray<{ estimated: number; counted: number }>,
  settings: MarginSettings = DEFAULT_MARGIN,
): boolean {
  const stats = ratioStats(ev);
  const s = ratioStats(evidenceOf(sample));
  if (!stats || !s) return true;
  const { ratio, sd, n } = stats;
  // Counts are whole tokens: a small item's ratio moves by 1/estimated from rounding alone.
  const tolerance = ratio * settings.floor;
  const meanBand = settings.z * sd * Math.sqrt(1 / s.n + 1 / n) + tolerance;
  if (Math.abs(s.ratio - ratio) > meanBand) return false;
  const itemBand = settings.z * sd * Math.sqrt(1 + 1 / n) + tolerance;
  return sample.every(
    (p) => p.estimated <= 0 || p.counted / p.estimated <= ratio + itemBand + 1 / p.estimated,
  );
}

/** Answered items a model's evidence stands for at most: older jobs fade as new ones are folded in. */
export const MODEL_EVIDENCE_ITEMS = 2000;

/** What `later` adds to `earlier` (both sums over the same growing set): never below zero. */
export function evidenceSince(later: TokenEvidence, earlier: Partial<TokenEvidence>): TokenEvidence {
  const out = { ...NO_EVIDENCE };
  for (const k of Object.keys(out) as Array<keyof TokenEvidence>)
    out[k] = Math.max(0, later[k] - (Number(earlier[k] ?? 0) || 0));
  return out.items > 0 ? out : NO_EVIDENCE;
}

/**
 * A model's evidence with a job's new answers folded in (per model, across its jobs: a fresh job
 * whose sample looks like them is planned by them). Past {@link MODEL_EVIDENCE_ITEMS} items every sum is
 * scaled down alike, which keeps the ratio and its spread and weighs recent jobs more.
 */
export function foldEvidence(
  model: TokenEvidence,
  added: TokenEvidence,
  cap = MODEL_EVIDENCE_ITEMS,
): TokenEvidence {
  const sum = addEvidence(model, added);
  if (sum.items <= cap) return sum;
  const scale = cap / sum.items;
  const out = { ...sum };
  for (const k of Object.keys(out) as Array<keyof TokenEvidence>) out[k] *= scale;
  return out;
}
