import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, readQuotas } from '../../../functions/platform/config.js';

/** The variables `npm run dev` sets for the local cloud. */
const LOCAL = {
  GEMINI_BASE_URL: 'http://127.0.0.1:8790',
  FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080',
  STORAGE_EMULATOR_HOST: 'http://127.0.0.1:9199',
  CLOUD_TASKS_EMULATOR_HOST: '127.0.0.1:8123',
};

/** A deployed function's environment. */
const CLOUD = {
  GEMINI_API_KEY: 'AIza-test-key',
  GOOGLE_CLOUD_PROJECT: 'my-project-42',
  REGION: 'europe-west1',
  FANOUT_BUCKET: 'my-project-42-fanout',
  WORKER_URL: 'https://worker-abc-ew.a.run.app',
  TASKS_SERVICE_ACCOUNT: 'fanout-tasks@my-project-42.iam.gserviceaccount.com',
};

function configErrorOf(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig: local', () => {
  it('runs on the local cloud with defaults and the stand-in', () => {
    const config = loadConfig(LOCAL);

    expect(config.local).toBe(true);
    expect(config.projectId).toBe('fanout-local');
    expect(config.region).toBe('us-central1');
    expect(config.bucket).toBe('fanout-local-fanout');
    expect(config.gemini).toEqual({
      apiKey: 'local-stand-in',
      baseUrl: 'http://127.0.0.1:8790',
      local: true,
      timeoutMs: 300_000,
      flexTimeoutMs: 600_000,
    });
    expect(config.emulators).toEqual({
      firestore: '127.0.0.1:8080',
      storage: 'http://127.0.0.1:9199',
      tasks: '127.0.0.1:8123',
    });
    expect(config.logLevel).toBe('info');
    expect(config.quotas.defaultModel in config.quotas.models).toBe(true);
  });

  it('needs a key or a base URL for Gemini, and says how to fix it', () => {
    const error = configErrorOf({ ...LOCAL, GEMINI_BASE_URL: undefined });

    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^GEMINI_API_KEY: missing/);
    expect(error.problems[0]).toContain('GEMINI_BASE_URL');
    expect(error.message).toContain('Invalid configuration');
  });

  it('fits item tasks and leases to the longer of the standard and Flex timeouts', () => {
    const standard = loadConfig({ ...LOCAL, GEMINI_TIMEOUT_MS: '900000', GEMINI_FLEX_TIMEOUT_MS: '60000' });
    const flex = loadConfig({ ...LOCAL, GEMINI_TIMEOUT_MS: '60000', GEMINI_FLEX_TIMEOUT_MS: '900000' });

    expect(flex.gemini).toMatchObject({ timeoutMs: 60_000, flexTimeoutMs: 900_000 });
    expect(standard.dispatchDeadlineSeconds).toBe(930);
    expect(flex.dispatchDeadlineSeconds).toBe(930);
    expect(flex.leaseMs).toBe(960_000);
  });

  it('reads GEMINI_TIMEOUT_MS and LOG_LEVEL', () => {
    const config = loadConfig({ ...LOCAL, GEMINI_TIMEOUT_MS: '2000', LOG_LEVEL: 'silent' });

    expect(config.gemini.timeoutMs).toBe(2000);
    expect(config.logLevel).toBe('silent');
  });

  it('retries callbacks for a day unless CALLBACK_RETRY_MS says otherwise, and refuses less than a minute', () => {
    expect(loadConfig(LOCAL).callbackRetryMs).toBe(86_400_000);
    expect(loadConfig({ ...LOCAL, CALLBACK_RETRY_MS: '3600000' }).callbackRetryMs).toBe(3_600_000);
    expect(() => loadConfig({ ...LOCAL, CALLBACK_RETRY_MS: '10' })).toThrow(/CALLBACK_RETRY_MS/);
  });

  it('bounds a failing Batch step by BATCH_STEP_MAX_FAILURES and BATCH_STEP_MAX_MS, with defaults', () => {
    const defaults = loadConfig(LOCAL);
    const set = loadConfig({ ...LOCAL, BATCH_STEP_MAX_FAILURES: '5', BATCH_STEP_MAX_MS: '600000' });

    expect([defaults.batchStepMaxFailures, defaults.batchStepMaxMs]).toEqual([30, 10_800_000]);
    expect([set.batchStepMaxFailures, set.batchStepMaxMs]).toEqual([5, 600_000]);
    expect(configErrorOf({ ...LOCAL, BATCH_STEP_MAX_FAILURES: '0' }).problems[0]).toMatch(
      /^BATCH_STEP_MAX_FAILURES: /,
    );
  });
});

describe('loadConfig: cloud', () => {
  it('reads a full deployed environment', () => {
    const config = loadConfig(CLOUD);

    expect(config.local).toBe(false);
    expect(config.projectId).toBe('my-project-42');
    expect(config.bucket).toBe('my-project-42-fanout');
    expect(config.workerUrl).toBe('https://worker-abc-ew.a.run.app');
    expect(config.tasksServiceAccount).toBe('fanout-tasks@my-project-42.iam.gserviceaccount.com');
    expect(config.gemini).toMatchObject({ apiKey: 'AIza-test-key', local: false });
    expect(config.emulators).toEqual({ firestore: undefined, storage: undefined, tasks: undefined });
  });

  it('requires WORKER_URL and FANOUT_BUCKET without emulators, naming both with a fix', () => {
    const error = configErrorOf({ GEMINI_BASE_URL: 'http://127.0.0.1:8790' });

    expect(error.problems).toHaveLength(2);
    expect(error.problems[0]).toMatch(/^WORKER_URL: missing \(set it to the HTTPS URL of the worker/);
    expect(error.problems[1]).toMatch(/^FANOUT_BUCKET: missing \(set it to the bucket/);
  });

  it('names every missing variable at once', () => {
    const error = configErrorOf({});

    expect(error.problems.map((p) => p.split(':')[0])).toEqual([
      'GEMINI_API_KEY',
      'WORKER_URL',
      'FANOUT_BUCKET',
    ]);
  });
});

describe('loadConfig: bad values', () => {
  it.each([
    ['FIRESTORE_EMULATOR_HOST', 'http://127.0.0.1:8080', /HOST:PORT/],
    ['FIRESTORE_EMULATOR_HOST', 'localhost', /HOST:PORT/],
    ['CLOUD_TASKS_EMULATOR_HOST', '127.0.0.1', /HOST:PORT/],
    ['STORAGE_EMULATOR_HOST', '127.0.0.1:9199', /http\(s\) URL/],
    ['GOOGLE_CLOUD_PROJECT', 'My_Project', /project id/],
    ['FANOUT_BUCKET', 'Bad Bucket', /bucket name/],
    ['WORKER_URL', 'worker.example.com', /http\(s\) URL/],
    ['GEMINI_BASE_URL', 'ftp://example.com', /http\(s\) URL/],
    ['TASKS_SERVICE_ACCOUNT', 'not-an-email', /service account email/],
    ['GEMINI_TIMEOUT_MS', '10', /.+/],
    ['LOG_LEVEL', 'verbose', /.+/],
  ])('names %s when it is %j', (name, value, message) => {
    const error = configErrorOf({ ...LOCAL, [name]: value });

    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]?.startsWith(`${name}: `)).toBe(true);
    expect(error.problems[0]).toMatch(message);
  });

  it('adds how to fix it for the variables that have a known fix', () => {
    const error = configErrorOf({ ...LOCAL, FIRESTORE_EMULATOR_HOST: 'nope' });

    expect(error.problems[0]).toContain('npm run dev');
  });
});

describe('quotas', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('validates the bundled infra/quotas.json', () => {
    const quotas = readQuotas();

    expect(quotas.models[quotas.defaultModel]).toBeDefined();
    expect(quotas.headroom).toBeGreaterThan(0);
    expect(quotas.headroom).toBeLessThanOrEqual(1);
    expect(quotas.queue.maxAttempts).toBeGreaterThan(1);
  });

  it('names the bad field of an invalid QUOTAS_FILE', () => {
    dir = mkdtempSync(join(tmpdir(), 'fanout-quotas-'));
    const file = join(dir, 'quotas.json');
    const bundled = readQuotas();
    const broken = {
      ...bundled,
      models: { ...bundled.models, 'gemini-2.5-flash': { ...bundled.models['gemini-2.5-flash'], rpm: -5 } },
    };
    writeFileSync(file, JSON.stringify(broken));

    const error = configErrorOf({ ...LOCAL, QUOTAS_FILE: file });

    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^QUOTAS_FILE: /);
    expect(error.problems[0]).toContain('models.gemini-2.5-flash.rpm');
  });

  it('names a defaultModel that is not among the models', () => {
    dir = mkdtempSync(join(tmpdir(), 'fanout-quotas-'));
    const file = join(dir, 'quotas.json');
    writeFileSync(file, JSON.stringify({ ...readQuotas(), defaultModel: 'gemini-9' }));

    const error = configErrorOf({ ...LOCAL, QUOTAS_FILE: file });

    expect(error.problems[0]).toContain('defaultModel');
  });

  it('reports a QUOTAS_FILE that is not JSON', () => {
    dir = mkdtempSync(join(tmpdir(), 'fanout-quotas-'));
    const file = join(dir, 'quotas.json');
    writeFileSync(file, '{ not json');

    const error = configErrorOf({ ...LOCAL, QUOTAS_FILE: file });

    expect(error.problems[0]).toMatch(/^QUOTAS_FILE: /);
  });

  it('reads a valid QUOTAS_FILE instead of the bundled one', () => {
    dir = mkdtempSync(join(tmpdir(), 'fanout-quotas-'));
    const file = join(dir, 'quotas.json');
    const bundled = readQuotas();
    writeFileSync(file, JSON.stringify({ ...bundled, tier: 'custom-tier' }));

    const config = loadConfig({ ...LOCAL, QUOTAS_FILE: file });

    expect(config.quotas.tier).toBe('custom-tier');
  });
});
