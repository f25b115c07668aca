import { describe, expect, it } from 'vitest';
import { parsePipeline, pipelineOutcome, unitRequest } from '../../../functions/core/pipeline.js';
import { checkTemplate, parseTemplate, renderTemplate } from '../../../functions/core/pipeline-template.js';
import { testQuotas } from '../../helpers/test-quotas.js';

const JSON_CONFIG = {
  responseMimeType: 'application/json',
  responseJsonSchema: { type: 'object', properties: { title: { type: 'string' } } },
};

describe('pipeline templates', () => {
  it('splits a template into text and references with their field paths', () => {
    expect(parseTemplate('A {{ input }} and {{extract.title}}!')).toEqual([
      { text: 'A ' },
      { ref: { name: 'input', path: [] } },
      { text: ' and ' },
      { ref: { name: 'extract', path: ['title'] } },
      { text: '!' },
    ]);
  });

  it('refuses unknown names, the step itself and later steps (cycles), and fields of a step without a schema', () => {
    // Arrange
    const steps = [
      { name: 'one', branches: 1, json: false },
      { name: 'two', branches: 1, json: true },
      { name: 'three', branches: 2, json: false },
    ];

    // Act
    const problems = (template: string, at: number) =>
      checkTemplate(template, at, steps, 'f').map((p) => p.message);

    // Assert
    expect(problems('{{input}} {{one}}', 1)).toEqual([]);
    expect(problems('{{nope}}', 1)[0]).toContain('unknown name "nope"');
    expect(problems('{{two}}', 1)[0]).toContain('runs as this one (a cycle)');
    expect(problems('{{three}}', 1)[0]).toContain('runs after this one (a cycle)');
    expect(problems('{{one.title}}', 1)[0]).toContain('has no JSON schema');
    expect(problems('{{input.x}}', 1)[0]).toContain('the input has no fields');
    expect(problems('{{two.title.deep}}', 2)).toEqual([]);
  });

  it('renders the input, answers, JSON fields, fan-out lists and branches; a failed step is empty', () => {
    // Arrange
    const ctx = {
      input: 'the input',
      steps: {
        extract: [{ model: 'm', text: '{"title":"T","n":{"a":1}}', json: { title: 'T', n: { a: 1 } } }],
        ask: [
          { model: 'm1', text: 'yes' },
          { model: 'm2', text: 'no' },
        ],
        broken: [{ model: 'm' }],
      },
    };

    // Act
    const out = renderTemplate(
      '{{input}}|{{extract.title}}|{{extract.n}}|{{ask.1}}|{{broken}}|{{extract.missing}}',
      ctx,
    );
    const list = renderTemplate('{{ask}}', ctx);

    // Assert
    expect(out).toBe('the input|T|{"a":1}|no||');
    expect(list).toBe('Answer 1 (m1):\nyes\n\nAnswer 2 (m2):\nno');
  });

  it('resolves steps: models default to the job model, branches are models then prompts, unknown models name the field', () => {
    // Act
    const ok = parsePipeline(
      [
        { name: 'a', config: JSON_CONFIG, prompt: '{{input}}' },
        { name: 'b', models: ['gemini-2.5-flash', 'gemini-2.5-pro'], prompts: ['x {{a.title}}', 'y'] },
      ],
      undefined,
      'gemini-2.5-pro',
      testQuotas(),
    );
    const bad = parsePipeline([{ name: 'a', model: 'nope' }], 'continue', 'gemini-2.5-pro', testQuotas());

    // Assert
    expect(ok).toMatchObject({
      spec: {
        onStepError: 'fail',
        steps: [
          { name: 'a', json: true, branches: [{ model: 'gemini-2.5-pro', prompt: '{{input}}' }] },
          {
            name: 'b',
            json: false,
            branches: [
              { model: 'gemini-2.5-flash', prompt: 'x {{a.title}}' },
              { model: 'gemini-2.5-flash', prompt: 'y' },
              { model: 'gemini-2.5-pro', prompt: 'x {{a.title}}' },
              { model: 'gemini-2.5-pro', prompt: 'y' },
            ],
          },
        ],
      },
    });
    expect(bad).toEqual({
      problems: [{ field: 'steps[0].model', message: expect.stringContaining('unknown model nope') }],
    });
  });

  it("builds a unit's request from its template, the step's config over the item's, or the item's own request", () => {
    // Arrange
    const item = {
      request: {
        contents: [{ role: 'user', parts: [{ text: 'hello' }] }],
        generationConfig: { temperature: 0.1 },
      },
    };
    const step = { name: 's', json: true, config: JSON_CONFIG, branches: [] };

    // Act
    const templated = unitRequest(item, step, { model: 'm', prompt: 'Say {{input}}' }, {});
    const own = unitRequest(item, { ...step, config: undefined }, { model: 'm' }, {});

    // Assert
    expect(templated).toEqual({
      contents: [{ role: 'user', parts: [{ text: 'Say hello' }] }],
      generationConfig: { temperature: 0.1, ...JSON_CONFIG },
    });
    expect(own).toEqual(item.request);
  });

  it("takes the last step's answer, a fan-out's list of answers, or the error of the step that failed", () => {
    // Arrange
    const spec = parsePipeline(
      [{ name: 'a' }, { name: 'b', models: ['gemini-2.5-flash', 'gemini-2.5-pro'] }],
      undefined,
      'gemini-2.5-pro',
      testQuotas(),
    );
    if (!('spec' in spec)) throw new Error('spec expected');
    const ok = { model: 'm', state: 'succeeded' as const, response: { r: 1 } };
    const failed = {
      model: 'm',
      state: 'failed' as const,
      error: { code: 400, status: 'INVALID_ARGUMENT', message: 'bad' },
    };

    // Act / Assert
    expect(pipelineOutcome(spec.spec, [[ok], [ok, { ...ok, response: { r: 2 } }]])).toEqual({
      state: 'succeeded',
      response: [{ r: 1 }, { r: 2 }],
    });
    expect(pipelineOutcome(spec.spec, [[failed]])).toEqual({
      state: 'failed',
      error: { code: 400, status: 'INVALID_ARGUMENT', message: 'step a: bad' },
    });
  });
});
