import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/platform/config.js';
import { mediaDeadlinesFor } from '../../../functions/platform/media/index.js';
import { CONTROL_DISPATCH_DEADLINE_SECONDS } from '../../../functions/platform/task-queue.js';
import { REPLAN_WAIT_MAX_MS } from '../../../functions/worker/keep-lease.js';
import { hclAttributeLine, hclTopLevelBlocks, terraformEvaluate } from '../../helpers/terraform.js';

// The worker's function timeout (infra/terraform/functions.tf) must outlive the longest delivery the
// code allows, or the function's own timeout cuts off an answer Gemini has already been paid for. A
// delivery may run past its dispatch deadline: media (its item deadline), a replanning (its bound),
// then from the last renewal of its lease the call, the outcome write retried to the lease's end and
// the parking of the answer: at most a whole lease. This evaluates functions.tf's own expression.

const FUNCTIONS_TF = resolve(import.meta.dirname, '..', '..', '..', 'infra', 'terraform', 'functions.tf');
const tempDirs: string[] = [];

afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** `local.worker_timeout_seconds` as functions.tf computes it for Gemini timeouts (standard, Flex). */
async function workerTimeoutSeconds(geminiTimeoutMs: number, flexTimeoutMs: number): Promise<number> {
  const hcl = await readFile(FUNCTIONS_TF, 'utf8');
  const line = hclAttributeLine(hclTopLevelBlocks(hcl, 'locals').join('\n'), 'worker_timeout_seconds');
  const dir = await mkdtemp(join(tmpdir(), 'worker-timeout-tf-'));
  tempDirs.push(dir);
  await writeFile(
    join(dir, 'main.tf'),
    `variable "gemini_timeout_ms" {\n  default = ${geminiTimeoutMs}\n}\n` +
      `variable "gemini_flex_timeout_ms" {\n  default = ${flexTimeoutMs}\n}\nlocals {\n${line}\n}\n`,
  );
  return Number(await terraformEvaluate(dir, 'local.worker_timeout_seconds'));
}

/** The longest one item delivery may run, from the code's own bounds (seconds). */
function longestDeliverySeconds(geminiTimeoutMs: number, flexTimeoutMs: number): number {
  const config = loadConfig({
    GEMINI_API_KEY: 'AIza-test-key',
    GOOGLE_CLOUD_PROJECT: 'my-project-42',
    REGION: 'europe-west1',
    FANOUT_BUCKET: 'my-project-42-fanout',
    WORKER_URL: 'https://worker-abc-ew.a.run.app',
    TASKS_SERVICE_ACCOUNT: 'fanout-tasks@my-project-42.iam.gserviceaccount.com',
    GEMINI_TIMEOUT_MS: String(geminiTimeoutMs),
    GEMINI_FLEX_TIMEOUT_MS: String(flexTimeoutMs),
  });
  const longestCall = Math.max(config.gemini.timeoutMs, config.gemini.flexTimeoutMs);
  const media = mediaDeadlinesFor(config.leaseMs, longestCall).itemDeadlineMs;
  return (media + REPLAN_WAIT_MAX_MS + config.leaseMs) / 1000;
}

describe('the worker function timeout (functions.tf)', () => {
  it.each([
    [5_000, 5_000],
    [60_000, 600_000],
    [300_000, 600_000],
    [540_000, 1_000],
    [900_000, 600_000],
    [300_000, 1_700_000],
    [1_700_000, 900_000],
  ])(
    'outlives the longest delivery and the control tasks when Gemini may take %i ms (Flex %i ms)',
    async (geminiTimeoutMs, flexTimeoutMs) => {
      const timeout = await workerTimeoutSeconds(geminiTimeoutMs, flexTimeoutMs);

      expect(timeout).toBeGreaterThanOrEqual(longestDeliverySeconds(geminiTimeoutMs, flexTimeoutMs));
      expect(timeout).toBeGreaterThanOrEqual(CONTROL_DISPATCH_DEADLINE_SECONDS);
      // Cloud Run functions (gen2) time out at 60 minutes at most.
      expect(timeout).toBeLessThanOrEqual(3600);
    },
  );
});
