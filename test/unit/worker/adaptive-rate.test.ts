import { describe, expect, it } from 'vitest';
import type { Quotas } from '../../../functions/core/quotas.js';
import { adaptiveEverywhere } from '../../../functions/core/quotas-adaptive.js';
import { normalizeJobRequest } from '../../../functions/core/requests.js';
import { GeminiCallError } from '../../../functions/platform/gemini/client.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { itemTaskId } from '../../../functions/platform/task-queue.js';
import { handleTask, type TaskDelivery } from '../../../functions/worker/handler.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { quotaBody } from '../../helpers/gemini-errors.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';
import { workerDepsOn } from '../../helpers/worker-world.js';

// A 429 of a model whose rate adapts (Vertex AI, `rpm: "auto"`) lowers its adaptive rate on the
// ledger (core/adaptive-rate.ts); a TPM 429 still cuts the token rate instead.

const JOB = 'job-1';
const ITEM = '000000000';
const T0 = Date.parse('2024-07-01T19:00:00Z');
const MODEL = 'gemini-2.5-flash';
const QUEUE = 'projects/fanout-local/locations/us-central1/queues/fanout-gemini-2-5-flash';

/** Vertex AI's Dynamic Shared Quota 429: no details at all (the error-code-429 page's wording). */
const poolBusy = () =>
  new GeminiCallError('Gemini answered 429', 429, {
    error: {
      code: 429,
      status: 'RESOURCE_EXHAUSTED',
      message:
        'Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.',
    },
  });

async function setup(quotas: Quotas) {
  const logger = createLogger({ destination: createLogCapture().stream });
  const now = () => T0;
  const world = fakeWorld({ quotas, logger, clock: now });
  const job = normalizeJobRequest({ prompts: ['What is 2 + 2?'] }, quotas);
  await world.lifecycle.create(
    { id: JOB, model: job.model, mode: 'realtime', total: job.items.length, source: 'api' },
    job.items,
  );
  return { world, deps: workerDepsOn(world, { quotas, logger, now }) };
}

function delivery(): TaskDelivery {
  return {
    queueName: QUEUE,
    taskName: `${QUEUE}/tasks/${itemTaskId(JOB, ITEM)}`,
    retryCount: 0,
    executionCount: 0,
    payload: { kind: 'item', jobId: JOB, itemId: ITEM, plannedMs: T0 - 1000 },
  };
}

describe('the worker on a 429 of a model whose rate adapts', () => {
  it("takes the multiplicative decrease on the model's adaptive rate and hands the item over", async () => {
    // Arrange
    const quotas = adaptiveEverywhere(testQuotas());
    const { world, deps } = await setup(quotas);
    world.gemini.failWith(poolBusy());
    const start = quotas.adaptiveRate.startRpm;

    // Act
    const reply = await handleTask(delivery(), deps);

    // Assert
    expect(reply).toEqual({ status: 200, body: { outcome: 'handed-over' } });
    expect(world.db.ledgers.get(MODEL)?.adaptive?.rpm).toBeCloseTo(
      start * quotas.adaptiveRate.decreaseFactor,
    );
    expect(world.db.ledgers.get(MODEL)?.tokenCut).toBeUndefined();
  });

  it('cuts the token rate on a TPM 429 and leaves the request rate alone', async () => {
    // Arrange
    const { world, deps } = await setup(adaptiveEverywhere(testQuotas()));
    world.gemini.failWith(
      new GeminiCallError(
        'Gemini answered 429',
        429,
        quotaBody('GenerateContentPaidTierInputTokensPerModelPerMinute', '31s'),
      ),
    );

    // Act
    await handleTask(delivery(), deps);

    // Assert
    expect(world.db.ledgers.get(MODEL)?.tokenCut).toMatchObject({ factor: 0.8 });
    expect(world.db.ledgers.get(MODEL)?.adaptive?.decreasedAtMs).toBeUndefined();
  });

  it('leaves a model with a fixed rate without an adaptive rate', async () => {
    // Arrange
    const { world, deps } = await setup(testQuotas());
    world.gemini.failWith(poolBusy());

    // Act
    await handleTask(delivery(), deps);

    // Assert
    expect(world.db.ledgers.get(MODEL)?.adaptive).toBeUndefined();
  });
});
