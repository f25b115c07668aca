import { createJobSchema, type FieldProblem, LIMITS } from '../api/jobs.js';
import {
  type Content,
  type GenerateContentRequest,
  itemIdForIndex,
  type JobMode,
  type MediaRef,
  type NewItem,
} from './jobs.js';
import {
  modelQuota,
  normalizeModelName,
  type Quotas,
  type RequestLimits,
  requestLimitsFor,
} from './quotas.js';
import { estimateInputTokens } from './tokens.js';

/** The body's schema and limits are part of the jobs API contract (`functions/api/jobs.ts`). */
export { LIMITS } from '../api/jobs.js';

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

/**
 * Validates and normalises a `POST /jobs` body into stored items: each becomes a full
 * GenerateContentRequest with the job's config and system instruction, a unique key and a token estimate.
 * Throws `RequestProblem` naming every bad field (at most 20).
 */
export function normalizeJobRequest(
  body: unknown,
  quotas: Quotas,
  options: {
    mediaGcsAllowed?: readonly string[];
    /** The local cloud only, where every receiver is an http server on loopback. */
    httpCallbacks?: boolean;
    /**
     * Why a callback may not go to a URL's hostname (a literal non-public IP), or undefined; the
     * platform's address rules, passed in (core does no I/O and knows no networks).
     */
    callbackHostProblem?: (hostname: string) => string | undefined;
  } = {},
): NormalizedJob {
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
  const b = parsed.data;
  if (b.callbackUrl && new URL(b.callbackUrl).protocol !== 'https:' && !options.httpCallbacks) {
    throw new RequestProblem('Invalid job: callbackUrl must be an https URL.', [
      { field: 'callbackUrl', message: 'must be an https URL' },
    ]);
  }
  const hostProblem = b.callbackUrl && options.callbackHostProblem?.(new URL(b.callbackUrl).hostname);
  if (hostProblem) {
    throw new RequestProblem(`Invalid job: callbackUrl ${hostProblem}.`, [
      { field: 'callbackUrl', message: hostProblem },
    ]);
  }
  if (Boolean(b.prompts) === Boolean(b.requests)) {
    throw new RequestProblem('Invalid job: send exactly one of prompts or requests.', [
      { field: 'prompts', message: 'exactly one of prompts or requests is required' },
    ]);
  }
  // A job that names no model takes its first item's (a Batch API line names one); see `buildItem`.
  const model = normalizeModelName(b.model ?? requestModel(b.requests?.[0]?.request) ?? quotas.defaultModel);
  if (!modelQuota(quotas, model)) {
    const known = Object.keys(quotas.models).join(', ');
    throw new RequestProblem(`Unknown model ${model}; this deployment serves ${known}.`, [
      { field: 'model', message: `unknown model; one of ${known}` },
    ]);
  }
  const systemInstruction: Content | undefined =
    typeof b.systemInstruction === 'string'
      ? { parts: [{ text: b.systemInstruction }] }
      : b.systemInstruction;

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
  const defaults: ItemDefaults = {
    ...(systemInstruction ? { systemInstruction } : {}),
    ...(b.config ? { config: b.config } : {}),
  };
  const rules: ItemRules = {
    limits: requestLimitsFor(quotas, model),
    model,
    ...(options.mediaGcsAllowed ? { mediaGcsAllowed: options.mediaGcsAllowed } : {}),
  };
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
  return {
    model,
    mode: b.mode,
    ...(b.callbackUrl ? { callbackUrl: b.callbackUrl } : {}),
    ...(b.onBatchFailure ? { onBatchFailure: b.onBatchFailure } : {}),
    ...(b.cache === false ? { cache: false as const } : {}),
    ...(b.deadline ? { deadline: b.deadline } : {}),
    ...(b.maxCostUsd !== undefined ? { maxCostUsd: b.maxCostUsd } : {}),
    items,
  };
}

/** What a job adds to each of its items' requests: its generation config and system instruction. */
export interface ItemDefaults {
  config?: Record<string, unknown>;
  systemInstruction?: Content;
}

/** What every item of a job is checked against: the model's request limits, where gs:// media may be. */
export interface ItemRules {
  limits: RequestLimits;
  /** The job's model: a request naming another (`request.model`, a Batch API line) is refused. */
  model?: string;
  /**
   * `gs://bucket/prefix/` entries a `gs://` medium must start with: the job owner's own folders and
   * the shared prefixes (core/owner-prefix.ts `mediaLocationsFor`); unchecked when absent.
   */
  mediaGcsAllowed?: readonly string[];
}

/** One item as a request body or a bucket line gives it. */
export interface ItemSource {
  /** The key as OpenAI's Batch format names it; the item's result line names it so too. */
  custom_id?: string | undefined;
  prompt?: string | undefined;
  request?: unknown;
  media?: MediaRef[] | undefined;
}

/** The model a request names (`request.model` of a Batch API line), without `models/`; or undefined. */
export function requestModel(request: unknown): string | undefined {
  const model = (request as { model?: unknown } | undefined)?.model;
  return typeof model === 'string' && model.length > 0 ? normalizeModelName(model) : undefined;
}

/**
 * Why a request's own `model` may not run in this job (it is another model than the job's), or
 * undefined. The job's model was chosen first (the body's or file's `model`, else the first item's).
 */
function modelProblem(request: unknown, jobModel: string | undefined): string | undefined {
  const named = requestModel(request);
  if (named === undefined || jobModel === undefined || named === jobModel) return undefined;
  return `request.model ${named} is not the job's model ${jobModel}; a job runs one model (send this line in a job of its own)`;
}

/**
 * Turns one validated item into a stored item: a full GenerateContentRequest with the job's config
 * (the item's own settings win) and system instruction, and its token estimate. A `problem` when it
 * is too big for one item document, or names another model than the job's. A request's own `model`
 * is checked, then dropped: the call's URL names the model.
 */
export function buildItem(
  src: ItemSource,
  index: number,
  key: string,
  defaults: ItemDefaults,
  rules?: ItemRules,
): NewItem | { problem: string; tooLarge?: boolean } {
  const wrongModel = modelProblem(src.request, rules?.model);
  if (wrongModel) return { problem: wrongModel };
  const request: GenerateContentRequest = src.request
    ? (structuredClone(src.request) as GenerateContentRequest)
    : { contents: [{ role: 'user', parts: [{ text: src.prompt! }] }] };
  delete (request as { model?: unknown }).model;
  if (defaults.systemInstruction && !request.systemInstruction)
    request.systemInstruction = defaults.systemInstruction;
  if (defaults.config) request.generationConfig = { ...defaults.config, ...request.generationConfig };
  const mediaRefs: MediaRef[] | undefined = src.media?.map((m) => ({ ...m }));
  const size =
    Buffer.byteLength(JSON.stringify(request)) + Buffer.byteLength(JSON.stringify(mediaRefs ?? []));
  if (size > LIMITS.maxItemBytes) {
    return {
      problem: `${size} bytes > ${LIMITS.maxItemBytes}; send large media as media[].url or gcsUri instead of inline data`,
      tooLarge: true,
    };
  }
  const problem =
    fileDataProblem(request) ||
    (rules && costProblem(request, rules.limits)) ||
    (rules?.mediaGcsAllowed && mediaProblem(mediaRefs ?? [], rules.mediaGcsAllowed));
  if (problem) return { problem };
  return {
    id: itemIdForIndex(index),
    index,
    key,
    ...(src.custom_id !== undefined ? { keyField: 'custom_id' as const } : {}),
    request,
    ...(mediaRefs ? { media: mediaRefs } : {}),
    estimatedTokens: estimateInputTokens(request, mediaRefs),
  };
}

/** Why a request asks for more than its model allows (see `RequestLimits`), or undefined. */
export function costProblem(request: GenerateContentRequest, limits: RequestLimits): string | undefined {
  const config = (request.generationConfig ?? {}) as Record<string, unknown>;
  const over = (field: string, max: number) => {
    const value = config[field];
    return typeof value === 'number' && value > max
      ? `generationConfig.${field} ${value} > ${max}`
      : undefined;
  };
  const tooMany =
    over('candidateCount', limits.maxCandidateCount) ?? over('maxOutputTokens', limits.maxOutputTokens);
  if (tooMany) return `${tooMany}, the most this deployment allows for the model`;
  const r = request as unknown as Record<string, unknown>;
  if (r.cachedContent !== undefined && !limits.cachedContent)
    return 'cachedContent is not allowed for this model in this deployment';
  if (r.tools !== undefined && limits.tools !== 'all') {
    const tools = Array.isArray(r.tools) ? r.tools : [r.tools];
    if (limits.tools === 'none' && tools.length > 0) return 'tools are not allowed for this model';
    const builtIn = tools.flatMap((t) =>
      t && typeof t === 'object'
        ? Object.keys(t).filter((k) => k !== 'functionDeclarations')
        : ['(not an object)'],
    );
    if (builtIn.length > 0)
      return `tools other than functionDeclarations (${[...new Set(builtIn)].join(', ')}) are not allowed for this model`;
  }
  return undefined;
}

/**
 * Why a `gs://` medium may not be read, or undefined: it must lie under an allowed prefix (another
 * caller's inbox/, staging/ or results/ never do), with no path tricks in its object name.
 */
export function mediaProblem(media: MediaRef[], allowed: readonly string[]): string | undefined {
  for (const { gcsUri } of media) {
    if (!gcsUri) continue;
    const object = gcsUri.replace(/^gs:\/\/[^/]+\//, '');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    if (/(^|\/)\.\.?(\/|$)|\/\/|\\|%|[\u0000-\u001f\u007f]/.test(object))
      return `media gcsUri ${gcsUri} has a path trick (., .., //, \\, % or a control character) in its name`;
    if (!allowed.some((prefix) => gcsUri.startsWith(prefix)))
      return `media gcsUri ${gcsUri} is outside the allowed locations (${allowed.join(', ')})`;
  }
  return undefined;
}

/**
 * Why a request may not carry `fileData` parts, or undefined when it has none. Every job of a
 * deployment shares one Gemini project, so a Files API URI names a file any job may have uploaded
 * (the worker uploads another owner's large media there): a `fileData` part is only ever added by the
 * worker, for a medium this job's item fetched itself. A caller sends media as `media[].url` or
 * `media[].gcsUri` instead.
 */
export function fileDataProblem(request: GenerateContentRequest): string | undefined {
  const contents = [...request.contents, ...(request.systemInstruction ? [request.systemInstruction] : [])];
  const found = contents.some(
    (c) => Array.isArray(c?.parts) && c.parts.some((p) => p?.fileData !== undefined),
  );
  return found
    ? 'fileData parts are not accepted (a Files API URI may name a file of another job); send the medium as media[].url or media[].gcsUri and the worker uploads it for this job'
    : undefined;
}
