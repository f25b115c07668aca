/**
 * The Batch API path, pure: which path a job and each of its items take, how a big set is split
 * into batches within the upstream limits. What a scheduler tick does with a batch it finds in a
 * given state is in ./batch-run.ts; the I/O lives in `functions/tick/batch-api/`.
 */
import type { GenerateContentRequest, JobMode, MediaRef, NewItem } from './jobs.js';
import type { Quotas } from './quotas.js';
import { answerSchemaOf } from './structured-output.js';

/** What a job asks for: a path, or `auto` (the Batch API from the model's threshold on). */
export type RequestedMode = 'auto' | JobMode;

/** What happens to items of a batch that failed, expired, was cancelled upstream or stayed pending. */
export type BatchFallback = 'realtime' | 'fail';

/** The item count from which `auto` sends a job of `model` to the Batch API. */
export function batchThreshold(model: string, quotas: Quotas): number {
  const q = Object.hasOwn(quotas.models, model) ? quotas.models[model] : undefined;
  return q?.batchMinItems ?? quotas.batchMinItems;
}

/**
 * The path of a job: `realtime`, `flex` and `batch` as asked (batch only on a model that supports
 * it: a problem otherwise), `auto` by the model's threshold, or, when the job names a deadline
 * (`timeLeftMs`), by the time it leaves ({@link routeByDeadline}). A `flex` job takes the queues
 * like a realtime one; its calls ask Gemini for the Flex tier.
 */
export function routeJob(
  requested: RequestedMode,
  itemCount: number,
  model: string,
  quotas: Quotas,
  timeLeftMs?: number,
): { mode: JobMode; priority?: true } | { problem: string } {
  const supports = Object.hasOwn(quotas.models, model) && quotas.models[model]!.batch;
  if (requested === 'batch')
    return supports ? { mode: 'batch' } : { problem: `${model} does not take batch jobs here` };
  if (requested === 'flex') return { mode: 'flex' };
  if (requested === 'realtime') return { mode: 'realtime' };
  if (timeLeftMs !== undefined) {
    const mode = routeByDeadline(timeLeftMs, itemCount, model, quotas);
    // The deadline is close: Priority (seconds, never shed) where this deployment may use it.
    return mode === 'realtime' && quotas.serviceTiers.priority.enabled ? { mode, priority: true } : { mode };
  }
  if (!supports) return { mode: 'realtime' };
  return { mode: itemCount >= batchThreshold(model, quotas) ? 'batch' : 'realtime' };
}

/**
 * `auto` with a deadline: the Batch API when hours are fine (`routing.batchMinMs`) and the set is
 * big enough for it, Flex when minutes are (`routing.flexMinMs`), standard realtime when the
 * deadline is close. Thresholds per model over the top-level ones (infra/quotas.json `routing`).
 */
export function routeByDeadline(
  timeLeftMs: number,
  itemCount: number,
  model: string,
  quotas: Quotas,
): JobMode {
  const quota = Object.hasOwn(quotas.models, model) ? quotas.models[model] : undefined;
  const routing = { ...quotas.routing, ...quota?.routing };
  if (quota?.batch && timeLeftMs >= routing.batchMinMs && itemCount >= batchThreshold(model, quotas))
    return 'batch';
  return timeLeftMs >= routing.flexMinMs ? 'flex' : 'realtime';
}

/**
 * Whether an item of a batch job goes into a batch. Items with `media` go the realtime path: their
 * URLs are fetched by the worker at send time, which a batch file cannot do. So do items whose
 * answer is checked against a schema (`structured-output.ts`): a miss is asked again at once, on
 * the model's quota, which a batch cannot do (and its collect reads no requests).
 */
export function isBatchable(item: {
  media?: MediaRef[] | undefined;
  request?: Pick<GenerateContentRequest, 'generationConfig'>;
}): boolean {
  if (item.request && answerSchemaOf(item.request)) return false;
  return !item.media || item.media.length === 0;
}

/** One batch of a job: items [fromIndex, toIndex) of its staged file, bytes [fromByte, toByte). */
export interface BatchPart {
  part: number;
  fromIndex: number;
  toIndex: number;
  fromByte: number;
  toByte: number;
  /** Batchable items in the range. */
  items: number;
  /** Their estimated input tokens. */
  tokens: number;
  /**
   * Indexes in the range of lines stored failed (bad lines, duplicate keys): never uploaded. A
   * duplicate key parses as well as its first line, so only the part can tell the upload. Absent
   * when none.
   */
  skip?: number[];
}

/** Failed lines one part names at most (its run record stays small): past that a new part starts. */
export const MAX_SKIPPED_LINES = 10_000;

/** Limits of one batch: the Files API's file size and the model's enqueued-token cap. */
export interface PartLimits {
  maxBytes: number;
  maxTokens: number;
}

/**
 * Share of the enqueued-token cap one batch is filled to, by the estimate: parts are split as the
 * file streams past, before Gemini has counted anything, and its tokenizer may count 30% more
 * (other scripts, a newer model). A part over the cap would be refused at create on every tick.
 */
export const PART_TOKEN_SHARE = 0.7;

export function partLimitsFor(model: string, quotas: Quotas): PartLimits {
  const q = quotas.models[model];
  return {
    maxBytes: quotas.batchMaxFileBytes,
    maxTokens: q?.batchEnqueuedTokens
      ? Math.floor(q.batchEnqueuedTokens * PART_TOKEN_SHARE)
      : Number.MAX_SAFE_INTEGER,
  };
}

/** Bytes a line takes in the upload besides its request: `{"key":"000000000","request":…}\n`. */
const LINE_OVERHEAD = 32;

/**
 * Splits a staged set into batches as its lines stream past, in input order: a part is closed when
 * the next batchable line would take it over a limit. Lines that do not go to the batch (bad or
 * with media) only extend the range. Memory: the parts, not the lines.
 */
export class PartPlanner {
  private readonly done: BatchPart[] = [];
  private open: BatchPart | undefined;
  /** Upload bytes of the open part's batchable lines. */
  private openBytes = 0;

  constructor(private readonly limits: PartLimits) {}

  /**
   * Line `index` spans bytes [fromByte, toByte) of the staged file; `batch` when it goes to the
   * batch. Returns the line's part (for a batch line): parts are numbered in order, and a part is
   * only ever opened by its first batch line or by the first line of the file.
   */
  add(
    index: number,
    fromByte: number,
    toByte: number,
    batch?: { requestBytes: number; tokens: number },
  ): number | undefined {
    const bytes = batch ? batch.requestBytes + LINE_OVERHEAD : 0;
    const tokens = batch?.tokens ?? 0;
    const full =
      this.open &&
      batch &&
      this.open.items > 0 &&
      (this.openBytes + bytes > this.limits.maxBytes || this.open.tokens + tokens > this.limits.maxTokens);
    if (full) {
      this.done.push(this.open!);
      this.open = undefined;
    }
    if (!this.open) {
      this.open = {
        part: this.done.length,
        fromIndex: index,
        toIndex: index,
        fromByte,
        toByte: fromByte,
        items: 0,
        tokens: 0,
      };
      this.openBytes = 0;
    }
    const p = this.open;
    p.toIndex = index + 1;
    p.toByte = toByte;
    if (!batch) return undefined;
    p.items += 1;
    p.tokens += tokens;
    this.openBytes += bytes;
    return p.part;
  }

  /**
   * Places the item of staged line `item.index` (bytes [fromByte, toByte)): a batchable item (no
   * media, no error) goes into the open part, whose number it gets as `batchPart`; any other only
   * extends the range; one stored failed is named in the part's `skip`. Returns whether it went
   * into a batch.
   */
  place(item: NewItem, fromByte: number, toByte: number): boolean {
    if (item.error || !isBatchable(item)) {
      if (item.error && (this.open?.skip?.length ?? 0) >= MAX_SKIPPED_LINES) {
        // The open part names as many failed lines as it may: close it, or, with no batch line in
        // it yet, start it again here (the lines before are in no batch).
        if (this.open!.items > 0) this.done.push(this.open!);
        this.open = undefined;
      }
      this.add(item.index, fromByte, toByte);
      if (item.error) {
        const open = this.open!;
        if (!open.skip) open.skip = [];
        open.skip.push(item.index);
      }
      return false;
    }
    item.batchPart = this.add(item.index, fromByte, toByte, {
      requestBytes: toByte - fromByte,
      tokens: item.estimatedTokens,
    });
    return true;
  }

  /** The parts, the last one closed; parts without a batchable item are left out. */
  finish(): BatchPart[] {
    if (this.open) this.done.push(this.open);
    this.open = undefined;
    return this.done.filter((p) => p.items > 0).map((p, n) => ({ ...p, part: n }));
  }
}

/** The displayName of a part's batch: how a tick finds a batch created by a tick that then crashed. */
export function batchDisplayName(jobId: string, part: number): string {
  return `fanout-${jobId}-p${part}`;
}
