import { describe, expect, it } from 'vitest';
import { validateJob } from '../../../functions/ingest/validate-job.js';
import { testQuotas } from '../../helpers/test-quotas.js';

/** The 400 a body gets: its message and each field's problem (or the job, when it is valid). */
function check(body: Record<string, unknown>) {
  try {
    return { valid: validateJob(body, { quotas: testQuotas() }, Date.now()) };
  } catch (err) {
    const e = err as {
      statusCode: number;
      message: string;
      details?: Array<{ field: string; message: string }>;
    };
    return { status: e.statusCode, message: e.message, fields: e.details?.map((d) => d.field) };
  }
}

const STEPS = [
  { name: 'a', prompt: 'A {{input}}' },
  { name: 'b', model: 'gemini-2.5-pro', prompt: 'B {{a}}' },
];

describe('a job with steps at submit', () => {
  it("is resolved: its first step's model is the job's, auto goes realtime", () => {
    // Act
    const { valid } = check({ model: 'gemini-2.5-flash', prompts: ['p'], steps: STEPS });

    // Assert
    expect(valid?.mode).toBe('realtime');
    expect(valid?.pipeline?.steps.map((s) => s.branches.map((b) => b.model))).toEqual([
      ['gemini-2.5-flash'],
      ['gemini-2.5-pro'],
    ]);
  });

  it('names each bad template and model in a 400', () => {
    // Act
    const result = check({
      prompts: ['p'],
      steps: [
        { name: 'a', prompt: '{{b}}' },
        { name: 'b', models: ['gemini-2.5-pro', 'nope'], prompt: '{{a.x}}' },
      ],
    });

    // Assert
    expect(result).toMatchObject({
      status: 400,
      fields: ['steps[1].models[1]', 'steps[0].prompt', 'steps[1].prompt'],
    });
  });

  it('refuses what pipelines do not offer: batch and flex modes, a budget, onStepError without steps, a duplicate name', () => {
    expect(check({ mode: 'batch', prompts: ['p'], steps: STEPS })).toMatchObject({
      status: 400,
      fields: ['mode'],
    });
    expect(check({ mode: 'flex', prompts: ['p'], steps: STEPS })).toMatchObject({
      status: 400,
      fields: ['mode'],
    });
    expect(check({ maxCostUsd: 1, prompts: ['p'], steps: STEPS })).toMatchObject({
      status: 400,
      fields: ['maxCostUsd'],
    });
    expect(check({ prompts: ['p'], onStepError: 'continue' })).toMatchObject({
      status: 400,
      fields: ['onStepError'],
    });
    expect(check({ prompts: ['p'], steps: [{ name: 'a' }, { name: 'a' }] })).toMatchObject({
      status: 400,
      fields: ['steps[1].name'],
    });
    expect(check({ prompts: ['p'], steps: [{ name: 'input' }] })).toMatchObject({
      status: 400,
      fields: ['steps[0].name'],
    });
  });
});
