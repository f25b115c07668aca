import { LIMITS } from '../api/jobs.js';
import {
  type Content,
  type GenerateContentRequest,
  itemIdForIndex,
  type MediaRef,
  type NewItem,
} from './jobs.js';
import { normalizeModelName, type RequestLimits } from './quotas.js';
import { estimateInputTokens } from './tokens.js';

/**
 * One item, as a request body or a bucket line gives it, made into a stored item: its full
 * GenerateContentRequest and token estimate, or the problem that keeps it out (too big, another
 * model, a `fileData` part, more than the model allows, media outside the owner's locations).
 */

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
