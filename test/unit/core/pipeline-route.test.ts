import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../../functions/core/pipeline.js';
import { routePipeline } from '../../../functions/core/pipeline-route.js';
import { testQuotas } from '../../helpers/test-quotas.js';

/** A two-step pipeline on both test models (batch from 1,000 items on each). */
function setup(proTakesBatch = true) {
  const quotas = testQuotas();
  quotas.models['gemini-2.5-pro']!.batch = proTakesBatch;
  const parsed = parsePipeline(
    [
      { name: 'a', prompt: 'A {{input}}' },
      { name: 'b', model: 'gemini-2.5-pro', prompt: 'B {{a}}' },
    ],
    undefined,
    'gemini-2.5-flash',
    quotas,
  );
  if (!('spec' in parsed)) throw new Error('bad pipeline');
  return { quotas, spec: parsed.spec };
}

describe('the path of a pipeline', () => {
  it('goes batch with auto only when every model of its steps would for an ordinary job', () => {
    const { quotas, spec } = setup();
    const noBatchOnPro = setup(false);

    expect(routePipeline('auto', 1000, spec, quotas)).toEqual({ mode: 'batch' });
    expect(routePipeline('auto', 999, spec, quotas)).toEqual({ mode: 'realtime' });
    expect(routePipeline('auto', 1000, noBatchOnPro.spec, noBatchOnPro.quotas)).toEqual({ mode: 'realtime' });
    // A deadline closer than the batch threshold (24 h) keeps it realtime, never Flex.
    expect(routePipeline('auto', 1000, spec, quotas, 3_600_000)).toEqual({ mode: 'realtime' });
  });

  it('takes batch when asked, naming a model that takes no batch jobs', () => {
    const { quotas, spec } = setup();
    const noBatchOnPro = setup(false);

    expect(routePipeline('batch', 1, spec, quotas)).toEqual({ mode: 'batch' });
    expect(routePipeline('batch', 1, noBatchOnPro.spec, noBatchOnPro.quotas)).toEqual({
      problem: 'gemini-2.5-pro does not take batch jobs here',
    });
    expect(routePipeline('realtime', 5000, spec, quotas)).toEqual({ mode: 'realtime' });
  });
});
