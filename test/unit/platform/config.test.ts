import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ownerPrefix } from '../../../functions/core/owner-prefix.js';
import { createDeps } from '../../../functions/deps.js';
import { ConfigError, loadConfig, readQuotas, requireGeminiKey } from '../../../functions/platform/config.js';
import { createLogger } from '../../../functions/platform/logger.js';

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

  it('needs a key or a base URL where Gemini is called, and says how to fix it', () => {
    const config = loadConfig({ ...LOCAL, GEMINI_BASE_URL: undefined });
    let error: unknown;
    try {
      requireGeminiKey(config);
    } catch (err) {
      error = err;
    }

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toHaveLength(1);
    expect((error as ConfigError).problems[0]).toMatch(/^GEMINI_API_KEY: missing/);
    expect((error as ConfigError).problems[0]).toContain('GEMINI_BASE_URL');
    expect((error as ConfigError).message).toContain('Invalid configuration');
    expect(requireGeminiKey(loadConfig(LOCAL))).toBe('local-stand-in');
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

    expect(error.problems.map((p) => p.split(':')[0])).toEqual(['WORKER_URL', 'FANOUT_BUCKET']);
  });

  it("loads ingest's and intake's environment without the Gemini key: it is read only where Gemini is called", () => {
    const { GEMINI_API_KEY: _bound, ...ingest } = CLOUD;

    const config = loadConfig(ingest);
    const deps = createDeps(config, { logger: createLogger({ level: 'silent' }) });

    expect(config.gemini).toEqual({ local: false, timeoutMs: 300_000, flexTimeoutMs: 600_000 });
    expect(JSON.stringify(config)).not.toContain('AIza');
    // What ingest and intake use is built; the Gemini clients are not, and say why if asked for.
    expect(deps.lifecycle).toBeDefined();
    expect(() => deps.gemini).toThrow(/GEMINI_API_KEY: missing/);
    expect(() => deps.batchApi).toThrow(ConfigError);
    expect(() => deps.media).toThrow(ConfigError);
    expect(() => deps.planner).toThrow(ConfigError);
    expect(requireGeminiKey(loadConfig(CLOUD))).toBe('AIza-test-key');
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

describe('identity settings', () => {
  it('accepts each audience URL with and without its slash, and other audiences as given', () => {
    const config = loadConfig({
      ...CLOUD,
      FANOUT_AUDIENCES: 'https://ingest.example.com/, 32555940559.apps.googleusercontent.com',
    });

    expect(config.identity.audiences).toEqual([
      'https://ingest.example.com',
      'https://ingest.example.com/',
      '32555940559.apps.googleusercontent.com',
    ]);
    expect(config.identity.extraIssuers).toEqual([]);
  });

  it('honours FANOUT_ACCEPT_STRIPPED_TOKENS in the cloud only, never locally', () => {
    expect(loadConfig({ ...CLOUD, FANOUT_ACCEPT_STRIPPED_TOKENS: 'true' }).identity.acceptStripped).toBe(
      true,
    );
    expect(loadConfig({ ...CLOUD }).identity.acceptStripped).toBe(false);
    expect(loadConfig({ ...LOCAL, FANOUT_ACCEPT_STRIPPED_TOKENS: 'true' }).identity.acceptStripped).toBe(
      false,
    );
  });

  it('keys page tokens with PAGE_TOKEN_SECRET, else a key derived from the callback key, never the key itself', () => {
    const secret = 'c'.repeat(40);
    const derived = loadConfig({ ...CLOUD, CALLBACK_SECRET: secret }).pageTokenKey;

    expect(loadConfig({ ...CLOUD, PAGE_TOKEN_SECRET: 'p'.repeat(32) }).pageTokenKey).toBe('p'.repeat(32));
    expect(derived).not.toBe(secret);
    expect(loadConfig({ ...CLOUD, CALLBACK_SECRET: secret }).pageTokenKey).toBe(derived);
    expect(configErrorOf({ ...CLOUD, PAGE_TOKEN_SECRET: 'short' }).message).toContain('PAGE_TOKEN_SECRET');
  });
});

describe('loadConfig: tenancy (media, bucket owners, caps, retention)', () => {
  it('defaults to the media/ root, the shared media/samples/, no bucket owners, 30 days', () => {
    const config = loadConfig(CLOUD);

    expect(config.mediaGcsAllowed).toEqual(['gs://my-project-42-fanout/media/']);
    expect(config.mediaGcsShared).toEqual(['gs://my-project-42-fanout/media/samples/']);
    expect(config.bucketOwners).toEqual({});
    expect(config.bucketCaps).toEqual({ maxLines: 1_000_000, maxBytes: 2 * 1024 ** 3 });
    expect(config.retentionMs).toBe(30 * 86_400_000);
  });

  it.each([
    ['MEDIA_GCS_ALLOWED', 'gs://my-project-42-fanout/', /whole bucket/],
    [
      'MEDIA_GCS_ALLOWED',
      'gs://my-project-42-fanout/media/,gs://my-project-42-fanout/results/',
      /inside results\//,
    ],
    ['MEDIA_GCS_ALLOWED', 'gs://my-project-42-fanout/inbox/', /inside inbox\//],
    ['MEDIA_GCS_ALLOWED', 'gs://my-project-42-fanout/staging/', /inside staging\//],
    ['MEDIA_GCS_ALLOWED', 'gs://my-project-42-fanout/answers/x/', /inside answers\//],
    ['MEDIA_GCS_SHARED', 'gs://my-project-42-fanout/results/', /inside results\//],
    ['MEDIA_GCS_SHARED', 'gs://my-project-42-fanout/media/', /holds the media root/],
  ])('refuses %s=%s at load, saying why', (name, value, says) => {
    const err = configErrorOf({ ...CLOUD, [name]: value });

    expect(err.problems).toEqual([expect.stringMatching(says)]);
    expect(err.problems[0]).toMatch(new RegExp(`^${name}: `));
  });

  it('maps each bucket owner by its prefix, lowercased', () => {
    const config = loadConfig({ ...CLOUD, FANOUT_BUCKET_OWNERS: 'Alice@Example.com, bob@example.com' });

    expect(config.bucketOwners).toEqual({
      [ownerPrefix('alice@example.com')]: 'alice@example.com',
      [ownerPrefix('bob@example.com')]: 'bob@example.com',
    });
  });

  it('refuses bucket owners that are not emails, caps that are not whole numbers, retention under 3 days', () => {
    for (const [name, value] of [
      ['FANOUT_BUCKET_OWNERS', 'alice'],
      ['BUCKET_MAX_LINES', '0'],
      ['BUCKET_MAX_BYTES', '1.5'],
      ['RETENTION_DAYS', '2'],
    ]) {
      expect(configErrorOf({ ...CLOUD, [name!]: value }).problems[0], name).toMatch(new RegExp(`^${name}: `));
    }
  });
});

describe('loadConfig: GEMINI_WEBHOOK_SECRET', () => {
  it("takes Gemini's whsec_ signing secret, is absent when unset, and names a malformed one with its fix", () => {
    const secret = `whsec_${Buffer.from('a signing secret for gemini').toString('base64')}`;

    expect(loadConfig({ ...CLOUD, GEMINI_WEBHOOK_SECRET: secret }).geminiWebhookSecret).toBe(secret);
    expect(loadConfig(CLOUD).geminiWebhookSecret).toBeUndefined();
    expect(configErrorOf({ ...CLOUD, GEMINI_WEBHOOK_SECRET: 'plain-password' }).problems[0]).toMatch(
      /^GEMINI_WEBHOOK_SECRET: expected a Standard Webhooks secret .*registered/,
    );
  });
});
