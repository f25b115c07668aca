import type { z } from 'zod';
import { createJobSchema, type FieldProblem, LIMITS } from '../api/jobs.js';
import { buildItem, type ItemDefaults, type ItemRules, requestModel } from './build-item.js';
import type { Content, JobMode, NewItem } from './jobs.js';
import { modelQuota, normalizeModelName, type Quotas, requestLimitsFor } from './quotas.js';

/** The body's schema and limits are part of the jobs API contract (`functions/api/jobs.ts`). */
export { LIMITS } from '../api/jobs.js';
/** An item's defaults and rules (./build-item.ts), as the intake and Batch paths import them from here. */
export type { ItemDefaults, ItemRules } from './build-item.js';

export class RequestProblem extends Error {
  constructor(
    message: string,
    readonly problems: FieldProblem[],
    readonly tooLarge = false,
  ) {
    super(message);
    this.name = 'RequestProblem';
  }
}

export interface NormalizedJob {
  model: string;
  mode: 'auto' | JobMode;
  callbackUrl?: string;
  onBatchFailure?: 'realtime' | 'fail';
  /** `cache: false`: the job's items never read nor fill the response cache. */
  cache?: false;
  /** The request's `deadline` as written (parsed against the clock by whoever stores the job). */
  deadline?: string;
  /** The job's budget in USD (core/budget.ts). */
  maxCostUsd?: number;
  items: NewItem[];
}

function fieldName(path: PropertyKey[]): string {
  return path.reduce<string>(
    (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)),
    '',
  );
}

/** What `normalizeJobRequest` takes beside the body: the deployment's rules for media and callbacks. */
export interface NormalizeOptions {
  mediaGcsAllowed?: readonly string[];
  /** The local cloud only, where every receiver is an http server on loopback. */
  httpCallbacks?: boolean;
  /**
   * Why a callback may not go to a URL's hostname (a literal non-public IP), or undefined; the
   * platform's address rules, passed in (core does no I/O and knows no networks).
   */
  callbackHostProblem?: (hostname: string) => string | undefined;
}

/**
 * Validates and normalises a `POST /jobs` body into stored items: each becomes a full
 * GenerateContentRequest with the job's config and system instruction, a unique key and a token estimate.
 * Throws `RequestProblem` naming every bad field (at most 20).
 */
export function normalizeJobRequest(
  body: unknown,
  quotas: Quotas,
  options: NormalizeOptions = {},
): NormalizedJob {
  const b = parseBody(body);
  checkCallback(b.callbackUrl, options);
  if (Boolean(b.prompts) === Boolean(b.requests)) {
    throw new RequestProblem('Invalid job: send exactly one of prompts or requests.', [
      { field: 'prompts', message: 'exactly one of prompts or requests is required' },
    ]);
  }
  const model = jobModel(b, quotas);
  const systemInstruction: Content | undefined =
    typeof b.systemInstruction === 'string'
      ? { parts: [{ text: b.systemInstruction }] }
      : b.systemInstruction;
  const defaults: ItemDefaults = {
    ...(systemInstruction ? { systemInstruction } : {}),
    ...(b.config ? { config: b.config } : {}),
  };
  const rules: ItemRules = {
    limits: requestLimitsFor(quotas, model),
    model,
    ...(options.mediaGcsAllowed ? { mediaGcsAllowed: options.mediaGcsAllowed } : {}),
  };
  return {
    model,
    mode: b.mode,
    ...(b.callbackUrl ? { callbackUrl: b.callbackUrl } : {}),
    ...(b.onBatchFailure ? { onBatchFailure: b.onBatchFailure } : {}),
    ...(b.cache === false ? { cache: false as const } : {}),
    ...(b.deadline ? { deadline: b.deadline } : {}),
    ...(b.maxCostUsd !== undefined ? { maxCostUsd: b.maxCostUsd } : {}),
    items: buildItems(b, defaults, rules),
  };
}

type JobBody = z.output<typeof createJobSchema>;

/**
 * The body parsed by the contract's schema. A body of too many items is refused before it is parsed
 * (`tooLarge`: a 413), so a huge one costs no validation.
 */
function parseBody(body: unknown): JobBody {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new RequestProblem('The request body must be a JSON object.', [
      { field: '(body)', message: 'not an object' },
    ]);
  }
  const raw = body as Record<string, unknown>;
  const count =
    (Array.isArray(raw.prompts) ? raw.prompts.length : 0) +
    (Array.isArray(raw.requests) ? raw.requests.length : 0);
  if (count > LIMITS.maxItems) {
    throw new RequestProblem(
      `A job holds at most ${LIMITS.maxItems} items; this one has ${count}. Split it, or drop a JSONL file into the bucket's inbox/.`,
      [{ field: raw.prompts ? 'prompts' : 'requests', message: `${count} items > ${LIMITS.maxItems}` }],
      true,
    );
  }
  const parsed = createJobSchema.safeParse(body);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 20)
      .map((i) => ({ field: fieldName(i.path) || '(body)', message: i.message }));
    const first = problems[0]!;
    throw new RequestProblem(`Invalid job: ${first.field} ${first.message}.`, problems);
  }
  return parsed.data;
}

/** A callback goes to an https URL (http only in the local cloud), never to a host the platform refuses. */
function checkCallback(callbackUrl: string | undefined, options: NormalizeOptions): void {
  if (callbackUrl && new URL(callbackUrl).protocol !== 'https:' && !options.httpCallbacks) {
    throw new RequestProblem('Invalid job: callbackUrl must be an https URL.', [
      { field: 'callbackUrl', message: 'must be an https URL' },
    ]);
  }
  const hostProblem = callbackUrl && options.callbackHostProblem?.(new URL(callbackUrl).hostname);
  if (hostProblem) {
    throw new RequestProblem(`Invalid job: callbackUrl ${hostProblem}.`, [
      { field: 'callbackUrl', message: hostProblem },
    ]);
  }
}

/** The job's model, one this deployment serves: the body's, else its first item's (see `buildItem`), else the default. */
function jobModel(b: JobBody, quotas: Quotas): string {
  // A job that names no model takes its first item's (a Batch API line names one); see `buildItem`.
  const model = normalizeModelName(b.model ?? requestModel(b.requests?.[0]?.request) ?? quotas.defaultModel);
  if (!modelQuota(quotas, model)) {
    const known = Object.keys(quotas.models).join(', ');
    throw new RequestProblem(`Unknown model ${model}; this deployment serves ${known}.`, [
      { field: 'model', message: `unknown model; one of ${known}` },
    ]);
  }
  return model;
}

/** The job's items, each built with the job's defaults and checked by its rules; every bad one named. */
function buildItems(b: JobBody, defaults: ItemDefaults, rules: ItemRules): NewItem[] {
  const sources = b.prompts
    ? b.prompts.map((prompt) => ({
        prompt,
        key: undefined,
        custom_id: undefined,
        request: undefined,
        media: undefined,
      }))
    : b.requests!;
  if (sources.length === 0) {
    throw new RequestProblem('Invalid job: it has no items.', [
      { field: b.prompts ? 'prompts' : 'requests', message: 'must hold at least one item' },
    ]);
  }
  const keys = new Set<string>();
  const items: NewItem[] = [];
  const problems: FieldProblem[] = [];
  let tooLarge = false;
  sources.forEach((src, index) => {
    const field = b.prompts ? `prompts[${index}]` : `requests[${index}]`;
    const key = src.key ?? src.custom_id ?? String(index);
    if (keys.has(key)) {
      problems.push({ field: `${field}.key`, message: `duplicate key "${key}"` });
      return;
    }
    keys.add(key);
    const built = buildItem(src, index, key, defaults, rules);
    if ('problem' in built) {
      tooLarge ||= built.tooLarge === true;
      problems.push({ field, message: built.problem });
      return;
    }
    items.push(built);
  });
  if (problems.length > 0) {
    const first = problems[0]!;
    throw new RequestProblem(
      `Invalid job: ${first.field} ${first.message}.`,
      problems.slice(0, 20),
      tooLarge,
    );
  }
  return items;
}
