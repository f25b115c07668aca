/**
 * A pipeline's `steps` and `onStepError` read from a file rather than a `POST /jobs` body: the CLI's
 * `--pipeline` file and a bucket file's header line. Both are checked here, with the contract's own
 * schema, before anything is sent or stored, so a typo is named with its field where the user wrote
 * it instead of surfacing as a failed job. (What the server checks beyond the schema, such as
 * template names, it checks again at submit.)
 */
import type { z } from 'zod';
import { type PipelineFields, pipelineFieldsSchema } from './pipeline.js';

/** The fields, strict: an unknown key (`onStepErorr`) is a problem, not silently dropped; `steps` is required. */
const fileSchema = pipelineFieldsSchema.required({ steps: true }).strict();

/** One bad field: `steps[1].model` and what is wrong with it. */
export interface PipelineProblem {
  field: string;
  message: string;
}

export type CheckedPipeline =
  | { ok: true; fields: PipelineFields }
  | { ok: false; problems: PipelineProblem[] };

/** `['steps', 1, 'model']` → `steps[1].model`, as the jobs API names fields. */
function fieldName(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)),
    '',
  );
}

function problemsOf(issues: readonly z.core.$ZodIssue[]): PipelineProblem[] {
  return issues.map((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const field = fieldName(issue.path);
    if (keys.length > 0) {
      return {
        field: keys.map((k) => fieldName([...issue.path, k])).join(', '),
        message:
          issue.path.length === 0
            ? 'unknown field; a pipeline has steps and onStepError'
            : 'unknown field; a step has name, model or models, prompt or prompts, config, systemInstruction',
      };
    }
    return { field: field || '(pipeline)', message: issue.message };
  });
}

/**
 * Checks a pipeline as written: `{steps, onStepError?}`, or just the list of steps. Answers the
 * fields to merge into a job's body, or every problem with the field it is in.
 */
export function checkPipelineFields(value: unknown): CheckedPipeline {
  const candidate = Array.isArray(value) ? { steps: value } : value;
  if (candidate === null || typeof candidate !== 'object') {
    return {
      ok: false,
      problems: [{ field: '(pipeline)', message: 'must be {steps: [...], onStepError?} or a list of steps' }],
    };
  }
  const parsed = fileSchema.safeParse(candidate);
  if (parsed.success) return { ok: true, fields: parsed.data };
  return { ok: false, problems: problemsOf(parsed.error.issues) };
}

/** A problem list as one line: `steps[1].model: …; onStepError: …`. */
export function describePipelineProblems(problems: readonly PipelineProblem[]): string {
  return problems.map((p) => `${p.field}: ${p.message}`).join('; ');
}
