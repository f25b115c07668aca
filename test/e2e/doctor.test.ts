import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CheckResult } from '../../cli/doctor-checks.js';
import { run } from '../../cli/program.js';
import { cli, cliEnv, closedUrl, ROOT } from '../helpers/cli.js';
import { stack } from '../helpers/e2e.js';

/**
 * `gemini-fanout doctor` against the local cloud, with the official clients: every check passes
 * when the setup is whole, and a broken setting fails its check with what to fix.
 */
const QUOTAS = resolve(ROOT, 'test', 'fixtures', 'quotas.e2e.json');

/** The variables doctor reads when it is not pointed at the local cloud by its stack file. */
const SETTINGS = [
  'GOOGLE_CLOUD_PROJECT',
  'REGION',
  'FANOUT_BUCKET',
  'GEMINI_API_KEY',
  'GEMINI_BASE_URL',
  'CLOUD_TASKS_EMULATOR_HOST',
  'STORAGE_EMULATOR_HOST',
  'QUOTAS_FILE',
];

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fanout-doctor-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * A user's shell beside `npm run dev`: none of the settings the local cloud gave this test process,
 * so whatever the checks reach, they found through the stack file.
 */
function shellEnv(): NodeJS.ProcessEnv {
  const env = cliEnv();
  for (const name of SETTINGS) delete env[name];
  return env;
}

/** Runs the CLI in-process, as `npm start` does, with its own stack file. */
async function runInProcess(argv: string[], stackFile: string): Promise<{ code: number; stdout: string }> {
  const chunks: string[] = [];
  const sink = {
    write: (s: string) => {
      chunks.push(s);
      return true;
    },
  } as never;
  const code = await run(argv, { stdout: sink, stderr: sink, env: shellEnv(), target: { stackFile } });
  return { code, stdout: chunks.join('') };
}

describe('gemini-fanout doctor', { timeout: 120_000 }, () => {
  test('against the local cloud of .local/stack.json, every check passes, the Batch round trip too', async () => {
    // Arrange: the stack file `npm run dev` would write for this local cloud.
    const stackFile = join(dir, 'stack.json');
    await writeFile(stackFile, JSON.stringify(stack()));

    // Act
    const table = await runInProcess(['doctor', '--quotas', QUOTAS, '--batch'], stackFile);
    const asJson = await runInProcess(['doctor', '--quotas', QUOTAS, '--json'], stackFile);

    // Assert
    expect(table.code, table.stdout).toBe(0);
    expect(table.stdout).toMatch(/^check +\| result +\| what to fix$/m);
    expect(table.stdout).toMatch(
      /^Gemini reachable +\| ok: gemini-2\.5-flash at http:\/\/127\.0\.0\.1:\d+: countTokens \d+/m,
    );
    expect(table.stdout).toMatch(
      /^Batch API round trip +\| ok: batches\/\S+: upload, create, poll and collect; 2 of 2/m,
    );
    // One queue per model of the suite's quotas, and the control queue.
    const queues = Object.keys(JSON.parse(await readFile(QUOTAS, 'utf8')).models).length + 1;
    expect(table.stdout).toMatch(new RegExp(`^queues vs quotas +\\| ok: ${queues} queues match `, 'm'));
    expect(table.stdout).toMatch(/^bucket +\| ok: gs:\/\/\S+ exists/m);
    expect(table.stdout).toMatch(/^ingest URL +\| ok: GET http:\/\/127\.0\.0\.1:\d+\/jobs answered/m);
    expect(table.stdout).toMatch(/every check passed\n$/);
    const checks = (JSON.parse(asJson.stdout) as { checks: CheckResult[] }).checks;
    expect(asJson.code).toBe(0);
    expect(checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(checks.map((c) => c.check)).not.toContain('Batch API round trip');
  });

  test('a queue sized for other quotas and a Gemini URL where nothing answers fail, saying what to fix', async () => {
    // Arrange: quotas that plan the default model's queue at another rate than the one it has, and
    // the environment a deployed setup is read from, with a bad GEMINI_BASE_URL.
    const quotas = JSON.parse(await readFile(QUOTAS, 'utf8')) as { models: Record<string, { rpm: number }> };
    quotas.models['gemini-2.5-flash']!.rpm = 1000;
    const otherQuotas = join(dir, 'other-quotas.json');
    await writeFile(otherQuotas, JSON.stringify(quotas));
    const s = stack();
    const env = cliEnv({
      GOOGLE_CLOUD_PROJECT: s.projectId,
      FANOUT_BUCKET: s.bucket,
      CLOUD_TASKS_EMULATOR_HOST: s.tasksEmulatorHost,
      STORAGE_EMULATOR_HOST: s.storageEmulatorHost,
      GEMINI_BASE_URL: await closedUrl(),
    });

    // Act
    const result = await cli(['doctor', '--url', s.ingestUrl, '--quotas', otherQuotas], { env });

    // Assert
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toMatch(
      /^Gemini reachable +\| FAIL: countTokens on gemini-2\.5-flash: .* \| nothing answered at http:\/\/127\.0\.0\.1:\d+: fix GEMINI_BASE_URL/m,
    );
    expect(result.stdout).toMatch(
      /^queues vs quotas +\| FAIL: fanout-gemini-2-5-flash dispatches 48\.183\/s, \S+ plans 16\.05\/s +\| apply Terraform again/m,
    );
    // The rest of the setup is fine, and says so.
    expect(result.stdout).toMatch(/^bucket +\| ok: /m);
    expect(result.stdout).toMatch(/^ingest URL +\| ok: /m);
    expect(result.stdout).toMatch(/2 required check\(s\) failed, 0 warning\(s\)\n$/);
  });
});
