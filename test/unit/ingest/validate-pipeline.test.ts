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

  it('takes the Batch API when asked, or with auto when every model of its steps would for an ordinary job', () => {
    // Arrange: the test quotas send 1,000 items or more to batch on both models.
    const many = Array.from({ length: 1000 }, (_, i) => `p${i}`);
    const tomorrow = new Date(Date.now() + 30 * 3_600_000).toISOString();
    const soon = new Date(Date.now() + 60_000).toISOString();

    // Act
    const asked = check({ mode: 'batch', prompts: ['p'], steps: STEPS });
    const autoBig = check({ prompts: many, steps: STEPS });
    const autoSmall = check({ prompts: many.slice(1), steps: STEPS });
    const autoLate = check({ prompts: many, steps: STEPS, deadline: tomorrow });
    const autoClose = check({ prompts: many, steps: STEPS, deadline: soon });

    // Assert
    expect(asked.valid?.mode).toBe('batch');
    expect(autoBig.valid?.mode).toBe('batch');
    expect(autoSmall.valid?.mode).toBe('realtime');
    expect(autoLate.valid?.mode).toBe('batch');
    expect(autoClose.valid?.mode).toBe('realtime');
  });

  it('refuses what pipelines do not offer: flex mode, a budget, onStepError without steps, a duplicate name', () => {
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
