/**
 * The check of a structured answer against its JSON Schema, with Ajv (draft 2020-12, formats from
 * ajv-formats): the one place the validator is named, behind {@link checkAnswer}.
 *
 * The schema is the user's, so it is run with care, as Ajv's own security notes ask for untrusted
 * schemas (ajv.js.org/security.html: bound their size and depth, mind `pattern`; `$data`, off here,
 * stays off): its regular expressions (`pattern`,
 * `patternProperties`) are taken out before it is compiled, never run on the worker, where one catastrophic pattern would stall every
 * item of the instance (Gemini applies them as it writes; the rest is checked here); a schema too
 * big or one Ajv cannot compile leaves the answer unchecked rather than failing a paid answer.
 * Compiled validators are kept per schema text (a job's items share one schema).
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import { answerText, type JsonSchema } from './structured-output.js';

/** What the check found: the answer matches, does not (`problem` says how), or could not be checked. */
export type AnswerCheck = { ok: true } | { ok: false; problem: string } | { ok: 'unchecked'; reason: string };

/** A schema bigger than this (as JSON) is not compiled: compiling is code generation, and slow. */
export const MAX_SCHEMA_BYTES = 64 * 1024;

/** A schema nested deeper than this is not compiled (compiling recurses: a deep one overflows the stack). */
export const MAX_SCHEMA_DEPTH = 32;

/** How much of the validator's message a problem keeps (it goes into the repair turn and the error). */
const MAX_PROBLEM_CHARS = 600;

/** Compiled validators kept (by schema text): a job's items usually share one schema. */
const CACHE_SIZE = 64;

const ajv = new Ajv2020({
  strict: false,
  allErrors: true,
  logger: false,
});
formats.default(ajv, { mode: 'fast' });
const compiled = new Map<string, ValidateFunction | Error>();

/** Whether `response`'s answer (its first candidate's text) is JSON matching `schema`. */
export function checkAnswer(schema: JsonSchema, response: unknown): AnswerCheck {
  const validate = validatorFor(schema);
  if (validate instanceof Error) return { ok: 'unchecked', reason: validate.message };
  const text = answerText(response);
  if (text === undefined) return { ok: false, problem: 'the answer has no text' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: clip(`the answer is not JSON (${(err as Error).message})`) };
  }
  if (validate(value)) return { ok: true };
  return { ok: false, problem: clip(ajv.errorsText(validate.errors, { dataVar: 'answer' })) };
}

function validatorFor(schema: JsonSchema): ValidateFunction | Error {
  const text = JSON.stringify(schema);
  const hit = compiled.get(text);
  if (hit) return hit;
  let made: ValidateFunction | Error;
  if (Buffer.byteLength(text) > MAX_SCHEMA_BYTES)
    made = new Error(`the schema is over ${MAX_SCHEMA_BYTES} bytes`);
  else if (depthOf(schema) > MAX_SCHEMA_DEPTH)
    made = new Error(`the schema nests deeper than ${MAX_SCHEMA_DEPTH}`);
  else {
    try {
      made = ajv.compile(withoutRegExps(structuredClone(schema)));
    } catch (err) {
      made = new Error(`the schema cannot be compiled: ${(err as Error).message}`);
    }
  }
  if (compiled.size >= CACHE_SIZE) compiled.delete(compiled.keys().next().value!);
  compiled.set(text, made);
  return made;
}

/** Keywords whose value is one subschema, a list of them, or a map of them (draft 2020-12). */
const ONE = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames'];
const LIST = ['prefixItems', 'anyOf', 'oneOf', 'allOf'];
const MAP = ['properties', '$defs', 'definitions', 'dependentSchemas'];

/**
 * The schema without its regular expressions, in place: `pattern` goes; `patternProperties` goes
 * with the `additionalProperties` beside it (which properties are "additional" depends on the
 * patterns, so keeping it would fail answers Gemini wrote right).
 */
export function withoutRegExps(schema: unknown): JsonSchema {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return schema as JsonSchema;
  const s = schema as JsonSchema;
  if (typeof s.pattern === 'string') delete s.pattern;
  if (s.patternProperties !== undefined) {
    delete s.patternProperties;
    delete s.additionalProperties;
  }
  for (const k of ONE) if (s[k] !== undefined) withoutRegExps(s[k]);
  for (const k of LIST) if (Array.isArray(s[k])) for (const sub of s[k]) withoutRegExps(sub);
  for (const k of MAP) {
    const map = s[k];
    if (typeof map === 'object' && map !== null) for (const sub of Object.values(map)) withoutRegExps(sub);
  }
  return s;
}

/** How deep objects and arrays nest in `value` (without recursion: the depth is what is in question). */
function depthOf(value: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    deepest = Math.max(deepest, depth);
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

function clip(text: string): string {
  return text.length > MAX_PROBLEM_CHARS ? `${text.slice(0, MAX_PROBLEM_CHARS)}…` : text;
}
