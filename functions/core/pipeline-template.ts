/**
 * Pipeline templates (a job's `steps`, api/pipeline.ts): parsed and checked once at submit, rendered
 * per item when a step's units are made. Pure.
 *
 * A template is text with references in double braces: `{{input}}` (the item's prompt: the text of
 * its request's parts), `{{name}}` (an earlier step's answer text), `{{name.field.path}}` (a field of
 * an earlier step's JSON answer: a step with a JSON schema), and for a fan-out step `{{name}}` (all its
 * answers, each headed `Answer n (model):`, separated by a blank line) and `{{name.0}}` … (one
 * branch's answer; `{{name.0.field}}` a field of it). A failed step (with `onStepError: "continue"`)
 * renders as an empty string, as does a missing field; a field that is not a string renders as JSON.
 *
 * Checked at submit: a reference to an unknown name, to the step itself or a later step (a cycle), a
 * field of a step without a JSON schema, or of `input`, is a problem naming the field.
 */
import { answerSchemaOf, answerText } from './structured-output.js';

/** A checked problem of the request, naming its field (`steps[1].prompt`). */
export interface TemplateProblem {
  field: string;
  message: string;
}

/** A reference in a template: the name (`input` or a step) and the path after it. */
export interface TemplateRef {
  name: string;
  path: string[];
}

/** A parsed template: literal text and references, in order. */
export type TemplatePart = { text: string } | { ref: TemplateRef };

const REF = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** Splits a template into text and references; a reference's segments are split on dots. */
export function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const m of template.matchAll(REF)) {
    if (m.index > last) parts.push({ text: template.slice(last, m.index) });
    const [name = '', ...path] = m[1]!.split('.');
    parts.push({ ref: { name, path } });
    last = m.index + m[0].length;
  }
  if (last < template.length) parts.push({ text: template.slice(last) });
  return parts;
}

/** What the check needs of each step: its name, branch count, and whether its answer is JSON. */
export interface StepShape {
  name: string;
  branches: number;
  json: boolean;
}

/**
 * The problems of one step's template: every reference must name `input` or a step before this one;
 * a path needs a JSON step (after an optional branch index for a fan-out step).
 */
export function checkTemplate(
  template: string,
  stepIndex: number,
  steps: readonly StepShape[],
  field: string,
): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  for (const part of parseTemplate(template)) {
    if (!('ref' in part)) continue;
    const { name, path } = part.ref;
    const shown = [name, ...path].join('.');
    if (name === 'input') {
      if (path.length > 0) problems.push({ field, message: `{{${shown}}}: the input has no fields` });
      continue;
    }
    const at = steps.findIndex((s) => s.name === name);
    if (at < 0) {
      const known = ['input', ...steps.slice(0, stepIndex).map((s) => s.name)].join(', ');
      problems.push({ field, message: `{{${shown}}}: unknown name "${name}"; known here: ${known}` });
      continue;
    }
    if (at >= stepIndex) {
      problems.push({
        field,
        message: `{{${shown}}}: step "${name}" runs ${at === stepIndex ? 'as' : 'after'} this one (a cycle); a step reads only earlier steps`,
      });
      continue;
    }
    const step = steps[at]!;
    const fields = step.branches > 1 && /^\d+$/.test(path[0] ?? '') ? path.slice(1) : path;
    if (step.branches > 1 && fields !== path && Number(path[0]) >= step.branches) {
      problems.push({ field, message: `{{${shown}}}: step "${name}" has ${step.branches} branches` });
    } else if (fields.length > 0 && !step.json) {
      problems.push({
        field,
        message: `{{${shown}}}: step "${name}" has no JSON schema, so its answer has no fields (give it responseMimeType application/json and a schema)`,
      });
    }
  }
  return problems;
}

/** One branch's outcome as templates see it: its model, and its answer's text (absent: it failed). */
export interface BranchAnswer {
  model: string;
  text?: string;
  /** The answer parsed as JSON, for a step with a schema. */
  json?: unknown;
}

/** What a template is rendered with: the item's prompt and every earlier step's branches by name. */
export interface RenderContext {
  input: string;
  steps: Record<string, BranchAnswer[]>;
}

/** Renders a template (checked at submit) for one item. */
export function renderTemplate(template: string, ctx: RenderContext): string {
  return parseTemplate(template)
    .map((part) => ('text' in part ? part.text : renderRef(part.ref, ctx)))
    .join('');
}

function renderRef({ name, path }: TemplateRef, ctx: RenderContext): string {
  if (name === 'input') return ctx.input;
  const branches = ctx.steps[name] ?? [];
  if (branches.length > 1 && /^\d+$/.test(path[0] ?? '')) {
    const one = branches[Number(path[0])];
    return one ? branchText(one, path.slice(1)) : '';
  }
  if (branches.length === 1) return branchText(branches[0]!, path);
  return branches.map((b, n) => `Answer ${n + 1} (${b.model}):\n${branchText(b, path)}`).join('\n\n');
}

function branchText(branch: BranchAnswer, path: string[]): string {
  if (branch.text === undefined) return '';
  if (path.length === 0) return branch.text;
  let value: unknown = branch.json;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return '';
    value = (value as Record<string, unknown>)[key];
  }
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** A branch's answer for templates: its text, and that text parsed when the step asks for JSON. */
export function branchAnswerOf(model: string, response: unknown, json: boolean): BranchAnswer {
  const text = answerText(response) ?? '';
  if (!json) return { model, text };
  try {
    return { model, text, json: JSON.parse(text) };
  } catch {
    return { model, text };
  }
}

/** Whether a step's generation config asks for a checked JSON answer (structured-output.ts). */
export function stepAsksJson(config: Record<string, unknown> | undefined): boolean {
  return config !== undefined && answerSchemaOf({ generationConfig: config }) !== undefined;
}
