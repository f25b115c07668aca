/**
 * Structured output, checked: which requests ask for JSON that matches a schema, that schema as
 * JSON Schema, and the repair turn a request gets when its answer did not match. Pure; the check
 * itself (Ajv) is in `answer-check.ts`.
 *
 * A request asks for a checked answer when its `generationConfig` has `responseMimeType:
 * "application/json"` and `responseSchema` (Gemini's OpenAPI-subset Schema, types such as `STRING`)
 * or `responseJsonSchema` (JSON Schema already). The worker checks the first candidate's text; an
 * answer that does not match is asked again once, with the problem as a follow-up user turn; a
 * second miss is the item's error ({@link schemaMismatchError}).
 */
import type { ItemError } from '../api/jobs.js';
import type { Content, GenerateContentRequest } from './jobs.js';

/** A JSON Schema document (draft 2020-12), as Ajv takes it. */
export type JsonSchema = Record<string, unknown>;

/** The error code and status of an answer that did not match its schema, repaired once or not. */
export const SCHEMA_MISMATCH = { code: 422, status: 'SCHEMA_MISMATCH' } as const;

/** The schema a request's answer must match, as JSON Schema; undefined when it asks for none. */
export function answerSchemaOf(
  request: Pick<GenerateContentRequest, 'generationConfig'>,
): JsonSchema | undefined {
  const config = request.generationConfig;
  if (config?.responseMimeType !== 'application/json') return undefined;
  if (isObject(config.responseJsonSchema)) return config.responseJsonSchema;
  if (isObject(config.responseSchema)) return fromGeminiSchema(config.responseSchema);
  return undefined;
}

/** Fields of Gemini's Schema whose value is an int64, which REST sends as a string. */
const INT64_FIELDS = ['minItems', 'maxItems', 'minLength', 'maxLength', 'minProperties', 'maxProperties'];
/** Fields of Gemini's Schema that mean the same in JSON Schema. */
const SAME_FIELDS = [
  'format',
  'title',
  'description',
  'enum',
  'required',
  'minimum',
  'maximum',
  'default',
  'pattern',
];

/**
 * Gemini's Schema (the OpenAPI 3.0 subset of `responseSchema`: `type` as `STRING`, `OBJECT`…,
 * `nullable`, int64 bounds as strings) as JSON Schema. Fields JSON Schema has no use for
 * (`propertyOrdering`, `example`) are left out. Source: the Schema reference of the Gemini API
 * (ai.google.dev/api/caching#Schema).
 */
export function fromGeminiSchema(schema: Record<string, unknown>): JsonSchema {
  const out: JsonSchema = {};
  for (const field of SAME_FIELDS) if (schema[field] !== undefined) out[field] = schema[field];
  for (const field of INT64_FIELDS) {
    const value = Number(schema[field]);
    if (schema[field] !== undefined && Number.isFinite(value)) out[field] = value;
  }
  if (typeof schema.type === 'string' && schema.type !== 'TYPE_UNSPECIFIED') {
    const type = schema.type.toLowerCase();
    out.type = schema.nullable === true ? [type, 'null'] : type;
  }
  if (schema.nullable === true && Array.isArray(out.enum)) out.enum = [...out.enum, null];
  if (isObject(schema.items)) out.items = fromGeminiSchema(schema.items);
  if (Array.isArray(schema.anyOf)) out.anyOf = schema.anyOf.filter(isObject).map(fromGeminiSchema);
  if (isObject(schema.properties)) {
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([k, v]) => [k, isObject(v) ? fromGeminiSchema(v) : {}]),
    );
  }
  return out;
}

/**
 * The text of a response's first candidate (its parts' text joined, thoughts left out): what a JSON
 * answer is read from. Undefined when there is none (a blocked prompt, an empty candidate).
 */
export function answerText(response: unknown): string | undefined {
  const candidate = (response as { candidates?: Array<{ content?: Content }> } | null)?.candidates?.[0];
  const parts = candidate?.content?.parts?.filter((p) => typeof p.text === 'string' && p.thought !== true);
  return parts && parts.length > 0 ? parts.map((p) => p.text).join('') : undefined;
}

/** The follow-up turn that asks for the answer again (the repair turn). */
export function repairTurn(problem: string): Content {
  return {
    role: 'user',
    parts: [
      {
        text: `Your previous answer did not match the schema: ${problem}. Answer again with JSON only, matching the schema.`,
      },
    ],
  };
}

/**
 * The request of the repair call: the first request's turns, the model's answer as its turn, then
 * the repair turn. Its config (schema included) is the first request's.
 */
export function repairRequest(
  request: GenerateContentRequest,
  answer: unknown,
  problem: string,
): GenerateContentRequest {
  const modelTurn: Content = { role: 'model', parts: [{ text: answerText(answer) ?? '' }] };
  return { ...request, contents: [...request.contents, modelTurn, repairTurn(problem)] };
}

/** The item's error once its answer missed the schema twice (the first answer and its repair). */
export function schemaMismatchError(problem: string): ItemError {
  return {
    ...SCHEMA_MISMATCH,
    message: `The answer did not match the response schema, nor did the one asked for again: ${problem}`,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
