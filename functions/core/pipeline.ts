/**
 * A pipeline (a job's `steps`) as the system runs it: the steps checked and resolved at submit
 * (models, branches, JSON or not), the ids of the unit jobs that hold each (step, branch)'s units,
 * the request of one unit, and what an item's steps come to (its result line's `steps`, and its
 * outcome). Pure.
 *
 * Each (step, branch) of a pipeline job is a unit job of its own (`{jobId}-s{n}b{m}`, hidden from
 * listings): its items are the units of that step and branch, item i for input item i, on the
 * branch's model (its queue, its ledger, its counters). So every unit has an ordinary item's
 * guarantees (planned, leased, retried, recorded once, swept by the reconciler, checked against its
 * schema with a repair turn), and the view's per-step, per-model counts are those unit jobs' counters.
 */
import type { PipelineStep } from '../api/pipeline.js';
import type { Content, GenerateContentRequest, ItemError, ItemRecord, NewItem } from './jobs.js';
import {
  type BranchAnswer,
  checkTemplate,
  renderTemplate,
  type StepShape,
  stepAsksJson,
  type TemplateProblem,
} from './pipeline-template.js';
import { modelQuota, normalizeModelName, type Quotas } from './quotas.js';
import { estimateInputTokens } from './tokens.js';

/** One branch of a step: the model it runs on and its prompt template (none: the item's request). */
export interface BranchSpec {
  model: string;
  prompt?: string;
}

/** A step as stored on its job: resolved models and branches (models first, then prompt variants). */
export interface StepSpec {
  name: string;
  branches: BranchSpec[];
  config?: Record<string, unknown>;
  systemInstruction?: Content;
  /** Its answers are checked against a JSON schema, and later templates may read their fields. */
  json: boolean;
}

/** A job's pipeline: its steps in order and what a failed step does. */
export interface PipelineSpec {
  steps: StepSpec[];
  onStepError: 'fail' | 'continue';
}

/** Where a unit job stands in its pipeline: the pipeline job, the step and the branch. */
export interface UnitJobOf {
  jobId: string;
  step: number;
  branch: number;
}

/** The id of the unit job of (step, branch) of pipeline job `jobId`. */
export function unitJobId(jobId: string, step: number, branch: number): string {
  return `${jobId}-s${step}b${branch}`;
}

/**
 * Resolves and checks a request's `steps`: each step's models (its own, else the job's `model`) must
 * be served (infra/quotas.json), its templates may read only `input` and earlier steps. Problems name
 * the field (`steps[1].prompt`).
 */
export function parsePipeline(
  steps: readonly PipelineStep[],
  onStepError: 'fail' | 'continue' | undefined,
  jobModel: string,
  quotas: Quotas,
): { spec: PipelineSpec } | { problems: TemplateProblem[] } {
  const problems: TemplateProblem[] = [];
  const names = new Set<string>();
  const resolved: StepSpec[] = steps.map((step, n) => {
    if (names.has(step.name))
      problems.push({ field: `steps[${n}].name`, message: `duplicate step name "${step.name}"` });
    names.add(step.name);
    const models = (step.models ?? [step.model ?? jobModel]).map(normalizeModelName);
    models.forEach((model, m) => {
      if (!modelQuota(quotas, model)) {
        const field = step.models ? `steps[${n}].models[${m}]` : `steps[${n}].model`;
        problems.push({
          field,
          message: `unknown model ${model}; one of ${Object.keys(quotas.models).join(', ')}`,
        });
      }
    });
    const prompts: Array<string | undefined> = step.prompts ?? [step.prompt];
    const systemInstruction: Content | undefined =
      typeof step.systemInstruction === 'string'
        ? { parts: [{ text: step.systemInstruction }] }
        : step.systemInstruction;
    return {
      name: step.name,
      branches: models.flatMap((model) =>
        prompts.map((prompt) => ({ model, ...(prompt ? { prompt } : {}) })),
      ),
      ...(step.config ? { config: step.config } : {}),
      ...(systemInstruction ? { systemInstruction } : {}),
      json: stepAsksJson(step.config),
    };
  });
  const shapes: StepShape[] = resolved.map((s) => ({
    name: s.name,
    branches: s.branches.length,
    json: s.json,
  }));
  steps.forEach((step, n) => {
    if (step.prompt !== undefined)
      problems.push(...checkTemplate(step.prompt, n, shapes, `steps[${n}].prompt`));
    step.prompts?.forEach((p, k) => {
      problems.push(...checkTemplate(p, n, shapes, `steps[${n}].prompts[${k}]`));
    });
  });
  if (problems.length > 0) return { problems };
  return { spec: { steps: resolved, onStepError: onStepError ?? 'fail' } };
}

/** The item's prompt as `{{input}}` renders it: the text of its request's user turns. */
export function inputText(request: GenerateContentRequest): string {
  return request.contents
    .flatMap((c) => c.parts.map((p) => p.text).filter((t): t is string => typeof t === 'string'))
    .join('\n');
}

/**
 * The request of one unit: the branch's prompt rendered for the item, or (no prompt) the item's own
 * request; the step's config over the job's (the item's), its system instruction else the job's.
 */
export function unitRequest(
  item: Pick<ItemRecord, 'request'>,
  step: StepSpec,
  branch: BranchSpec,
  earlier: Record<string, BranchAnswer[]>,
): GenerateContentRequest {
  const base = item.request;
  const request: GenerateContentRequest =
    branch.prompt === undefined
      ? structuredClone(base)
      : {
          contents: [
            {
              role: 'user',
              parts: [{ text: renderTemplate(branch.prompt, { input: inputText(base), steps: earlier }) }],
            },
          ],
          ...(base.systemInstruction ? { systemInstruction: base.systemInstruction } : {}),
          ...(base.generationConfig ? { generationConfig: base.generationConfig } : {}),
        };
  if (step.systemInstruction) request.systemInstruction = step.systemInstruction;
  if (step.config) request.generationConfig = { ...request.generationConfig, ...step.config };
  return request;
}

/**
 * One unit of a (step, branch) for an input item, as its unit job stores it: the item's id, index
 * and key, the unit's request (unitRequest), the item's media only when the branch sends the item's
 * own request, and its estimated input tokens.
 */
export function unitItem(
  item: Pick<NewItem, 'id' | 'index' | 'key' | 'keyField' | 'request' | 'media'>,
  step: StepSpec,
  branch: BranchSpec,
  earlier: Record<string, BranchAnswer[]>,
): NewItem {
  const request = unitRequest(item, step, branch, earlier);
  const media = branch.prompt === undefined ? item.media : undefined;
  return {
    id: item.id,
    index: item.index,
    key: item.key,
    ...(item.keyField ? { keyField: item.keyField } : {}),
    request,
    ...(media ? { media } : {}),
    estimatedTokens: estimateInputTokens(request, media),
  };
}

/** One ended unit, as an item's pipeline reads it. */
export interface UnitEnd {
  model: string;
  state: 'succeeded' | 'failed' | 'cancelled';
  response?: unknown;
  error?: ItemError;
}

/** A step's outcome in a result line (`stepOutcomeSchema`): one per branch. */
export type StepOutcomeOf = { model: string; response: unknown } | { model: string; error: ItemError };

/** The step's entry of a line's `steps`: one outcome, or for a fan-out step the list of them. */
export function stepEntry(units: readonly UnitEnd[]): StepOutcomeOf | StepOutcomeOf[] {
  const outcomes = units.map(
    (u): StepOutcomeOf =>
      u.state === 'succeeded'
        ? { model: u.model, response: u.response }
        : { model: u.model, error: errorOf(u) },
  );
  return outcomes.length === 1 ? outcomes[0]! : outcomes;
}

/** The step's error when any branch failed (the first failed branch's), else undefined. */
export function stepError(name: string, units: readonly UnitEnd[]): ItemError | undefined {
  const failed = units.find((u) => u.state !== 'succeeded');
  if (!failed) return undefined;
  const e = errorOf(failed);
  return { ...e, message: `step ${name}: ${e.message}` };
}

function errorOf(unit: UnitEnd): ItemError {
  return unit.error ?? { code: 500, status: 'UNKNOWN', message: 'no error recorded' };
}

/**
 * What an item comes to once its pipeline is over: succeeded with the last step's answer (a fan-out
 * step's: the list of its answers), or failed with the error of the step that ended it (`fail`) or of
 * the last step (`continue`).
 */
export function pipelineOutcome(
  spec: PipelineSpec,
  ran: ReadonlyArray<readonly UnitEnd[]>,
): { state: 'succeeded'; response: unknown } | { state: 'failed'; error: ItemError } {
  const n = ran.length - 1;
  const error = stepError(spec.steps[n]!.name, ran[n]!);
  if (error) return { state: 'failed', error };
  const last = ran[n]!;
  return {
    state: 'succeeded',
    response: last.length === 1 ? last[0]!.response : last.map((u) => u.response),
  };
}
