import { describe, expect, it } from 'vitest';
import {
  checkAnswer,
  MAX_SCHEMA_BYTES,
  MAX_SCHEMA_DEPTH,
  withoutRegExps,
} from '../../../functions/core/answer-check.js';
import { isBatchable } from '../../../functions/core/batch.js';
import {
  answerSchemaOf,
  fromGeminiSchema,
  repairRequest,
  SCHEMA_MISMATCH,
  schemaMismatchError,
} from '../../../functions/core/structured-output.js';
import { jsonAnswerFault } from '../../../infra/local/gemini/faults.js';

const answer = (text: string) => ({ candidates: [{ content: { role: 'model', parts: [{ text }] } }] });
const json = (generationConfig: Record<string, unknown>) => ({ generationConfig });
const SCHEMA = {
  type: 'object',
  properties: { title: { type: 'string' }, tags: { type: 'array', items: { type: 'string' }, maxItems: 2 } },
  required: ['title'],
};

describe('which requests get a checked answer', () => {
  it('asks for JSON with a schema: responseJsonSchema as it is, responseSchema converted', () => {
    expect(answerSchemaOf(json({ responseMimeType: 'application/json', responseJsonSchema: SCHEMA }))).toBe(
      SCHEMA,
    );
    expect(
      answerSchemaOf(json({ responseMimeType: 'application/json', responseSchema: { type: 'STRING' } })),
    ).toEqual({ type: 'string' });
    expect(answerSchemaOf(json({ responseJsonSchema: SCHEMA }))).toBeUndefined();
    expect(answerSchemaOf(json({ responseMimeType: 'application/json' }))).toBeUndefined();
    expect(answerSchemaOf({})).toBeUndefined();
  });

  it('converts Gemini’s Schema: upper-case types, nullable, int64 bounds as strings, nested', () => {
    const converted = fromGeminiSchema({
      type: 'OBJECT',
      properties: {
        name: { type: 'STRING', nullable: true, enum: ['a', 'b'] },
        scores: { type: 'ARRAY', items: { type: 'NUMBER', format: 'double' }, minItems: '1', maxItems: '3' },
        pick: { anyOf: [{ type: 'INTEGER' }, { type: 'BOOLEAN' }] },
      },
      required: ['name'],
      propertyOrdering: ['name', 'scores'],
    });

    expect(converted).toEqual({
      type: 'object',
      required: ['name'],
      properties: {
        name: { type: ['string', 'null'], enum: ['a', 'b', null] },
        scores: { type: 'array', items: { type: 'number', format: 'double' }, minItems: 1, maxItems: 3 },
        pick: { anyOf: [{ type: 'integer' }, { type: 'boolean' }] },
      },
    });
  });

  it('keeps such items out of batches: a miss is asked again at once, which a batch cannot do', () => {
    const config = { responseMimeType: 'application/json', responseJsonSchema: SCHEMA };
    expect(isBatchable({ request: { generationConfig: config } })).toBe(false);
    expect(isBatchable({ request: { generationConfig: { temperature: 0 } } })).toBe(true);
  });
});

describe('checkAnswer', () => {
  it('passes JSON that matches and names what does not, or that the answer is not JSON at all', () => {
    expect(checkAnswer(SCHEMA, answer('{"title":"x","tags":["a"]}'))).toEqual({ ok: true });
    expect(checkAnswer(SCHEMA, answer('{"tags":["a","b","c"]}'))).toEqual({
      ok: false,
      problem: "answer must have required property 'title', answer/tags must NOT have more than 2 items",
    });
    expect(checkAnswer(SCHEMA, answer('{"title":"x"'))).toEqual({
      ok: false,
      problem: expect.stringMatching(/^the answer is not JSON/),
    });
    expect(checkAnswer(SCHEMA, { candidates: [{ finishReason: 'SAFETY' }] })).toEqual({
      ok: false,
      problem: 'the answer has no text',
    });
  });

  it('reads the answer’s text parts, thoughts left out, and checks formats', () => {
    const thought = {
      candidates: [{ content: { parts: [{ text: 'hmm', thought: true }, { text: '"2024-01-02"' }] } }],
    };

    expect(checkAnswer({ type: 'string', format: 'date' }, thought)).toEqual({ ok: true });
    expect(checkAnswer({ type: 'string', format: 'date' }, answer('"Jan 2"'))).toMatchObject({ ok: false });
  });

  it('runs none of the schema’s regular expressions, and leaves an answer unchecked when it cannot check', () => {
    const patterned = { type: 'object', properties: { id: { type: 'string', pattern: '^(a+)+$' } } };
    const tooBig = { type: 'object', description: 'x'.repeat(MAX_SCHEMA_BYTES) };
    let tooDeep: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < MAX_SCHEMA_DEPTH; i++) tooDeep = { type: 'array', items: tooDeep };

    expect(checkAnswer(patterned, answer('{"id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"}'))).toEqual({
      ok: true,
    });
    expect(checkAnswer(tooBig, answer('{}'))).toEqual({
      ok: 'unchecked',
      reason: expect.stringMatching(/over/),
    });
    expect(checkAnswer(tooDeep, answer('[]'))).toEqual({
      ok: 'unchecked',
      reason: expect.stringMatching(/deeper/),
    });
    expect(checkAnswer({ type: 'no-such-type' }, answer('{}'))).toMatchObject({ ok: 'unchecked' });
  });

  it('takes patternProperties out with the additionalProperties that depends on them, and nothing else', () => {
    const schema = {
      type: 'object',
      properties: { pattern: { type: 'string', pattern: 'x' } },
      patternProperties: { '^s_': { type: 'string' } },
      additionalProperties: false,
      $defs: { d: { pattern: 'y', minLength: 1 } },
    };

    expect(withoutRegExps(structuredClone(schema))).toEqual({
      type: 'object',
      properties: { pattern: { type: 'string' } },
      $defs: { d: { minLength: 1 } },
    });
  });
});

describe('the repair turn and the error', () => {
  it('asks again with the first answer as the model’s turn and the problem as a user turn', () => {
    const request = { contents: [{ role: 'user', parts: [{ text: 'q' }] }], generationConfig: { topK: 1 } };

    expect(repairRequest(request, answer('{"oops"'), 'the answer is not JSON')).toEqual({
      contents: [
        { role: 'user', parts: [{ text: 'q' }] },
        { role: 'model', parts: [{ text: '{"oops"' }] },
        {
          role: 'user',
          parts: [
            {
              text: 'Your previous answer did not match the schema: the answer is not JSON. Answer again with JSON only, matching the schema.',
            },
          ],
        },
      ],
      generationConfig: { topK: 1 },
    });
    expect(schemaMismatchError('p')).toMatchObject({
      ...SCHEMA_MISMATCH,
      message: expect.stringMatching(/: p$/),
    });
  });
});

describe('the local Gemini’s broken JSON answers', () => {
  it('breaks a JSON answer on every turn, or on the first only (once)', () => {
    const good = '{"echo":"x"}';

    expect(jsonAnswerFault(good, 'q [[fault:bad-json]]', false)).not.toBe(good);
    expect(jsonAnswerFault(good, 'q [[fault:bad-json]]', true)).not.toBe(good);
    expect(() => JSON.parse(jsonAnswerFault(good, 'q [[fault:bad-json-once]]', false))).toThrow();
    expect(jsonAnswerFault(good, 'q [[fault:bad-json-once]]', true)).toBe(good);
    expect(jsonAnswerFault(good, 'q', false)).toBe(good);
  });
});
