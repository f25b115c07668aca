import { describe, expect, it } from 'vitest';
import { batchTimeoutSeconds, doctorExitCode, renderDoctorTable } from '../../../cli/doctor.js';
import { checkBatch } from '../../../cli/doctor-batch.js';
import {
  type BucketReader,
  type CheckResult,
  checkAdc,
  checkBucket,
  checkGemini,
  checkGeminiKey,
  checkIngest,
  checkQueues,
  type QueueReader,
} from '../../../cli/doctor-checks.js';
import { CliError, EXIT } from '../../../cli/exit-codes.js';
import { JobsApiError } from '../../../functions/api/client.js';
import { queueRateLimits } from '../../../functions/core/queue-rate.js';
import type { BatchApi, BatchInfo, BatchState } from '../../../functions/platform/gemini/batch-api.js';
import { GeminiCallError, type GeminiClient } from '../../../functions/platform/gemini/client.js';
import { testQuotas } from '../../helpers/test-quotas.js';

const OK: CheckResult = { check: 'bucket', status: 'ok', detail: 'gs://b exists', required: true };
const BROKEN: CheckResult = {
  check: 'queues vs quotas',
  status: 'fail',
  detail: 'fanout-x is missing',
  fix: 'apply Terraform again',
  required: true,
};
const WARN: CheckResult = { ...BROKEN, check: 'bucket notification', required: false, fix: 'add it' };
const SKIP: CheckResult = {
  check: 'service accounts',
  status: 'skipped',
  detail: 'no client',
  required: false,
};

describe('renderDoctorTable', () => {
  it('prints check | result | what to fix, one row a check, the fix only for failures, and a summary', () => {
    // Act
    const table = renderDoctorTable([OK, BROKEN, WARN, SKIP]);

    // Assert
    const lines = table.split('\n');
    expect(lines[0]).toBe('check               | result                    | what to fix');
    expect(lines[1]).toMatch(/^-{20}\|-{27}\|-{12}$/);
    expect(lines.slice(2, 6)).toEqual([
      'bucket              | ok: gs://b exists',
      'queues vs quotas    | FAIL: fanout-x is missing | apply Terraform again',
      'bucket notification | warn: fanout-x is missing | add it',
      'service accounts    | skipped: no client',
    ]);
    expect(lines.at(-1)).toBe('1 required check(s) failed, 1 warning(s)');
  });

  it('says every check passed when none failed', () => {
    expect(renderDoctorTable([OK, SKIP]).split('\n').at(-1)).toBe('every check passed');
  });
});

describe('doctorExitCode', () => {
  it('is 1 when a required check failed, 0 when only warnings or skips', () => {
    expect(doctorExitCode([OK, BROKEN])).toBe(1);
    expect(doctorExitCode([OK, WARN, SKIP])).toBe(0);
  });
});

describe('credentials', () => {
  it('fails without GEMINI_API_KEY for a real Gemini, saying where the key is', () => {
    const r = checkGeminiKey({ standIn: false });
    expect(r).toMatchObject({ status: 'fail', required: true });
    expect(r.fix).toMatch(/export GEMINI_API_KEY=.*gcloud secrets versions access/);
    expect(checkGeminiKey({ standIn: true }).status).toBe('ok');
    expect(checkGeminiKey({ apiKey: 'k', standIn: false }).detail).not.toContain('k ');
  });

  it('fails without Application Default Credentials, saying how to log in', async () => {
    const r = await checkAdc({
      emulatorsOnly: false,
      projectOf: () => Promise.reject(new Error('Could not load the default credentials')),
    });
    expect(r).toMatchObject({ status: 'fail', required: true });
    expect(r.fix).toContain('gcloud auth application-default login');
    expect((await checkAdc({ emulatorsOnly: true, projectOf: () => Promise.reject() })).status).toBe(
      'skipped',
    );
  });
});

function gemini(fault: { on: 'countTokens' | 'generate'; err: unknown } | undefined): GeminiClient {
  return {
    countTokens: async () => {
      if (fault?.on === 'countTokens') throw fault.err;
      return 7;
    },
    generate: async () => {
      if (fault?.on === 'generate') throw fault.err;
      return { response: {}, usageMetadata: { promptTokenCount: 7, candidatesTokenCount: 1 } };
    },
  };
}

describe('checkGemini', () => {
  const base = { model: 'gemini-2.5-flash', baseUrl: 'https://g.example' };

  it.each([
    [undefined, {}, /nothing answered at https:\/\/g\.example: fix GEMINI_BASE_URL/],
    [400, { error: { details: [{ reason: 'API_KEY_INVALID' }] } }, /key is not valid: .*GEMINI_API_KEY/],
    [403, {}, /enable the Generative Language API/],
    [404, {}, /model gemini-2\.5-flash is unknown.*defaultModel/],
    [429, {}, /quota is spent/],
  ])('a countTokens failing with %s says what to fix', async (status, body, fix) => {
    const err = new GeminiCallError('refused', status, body);
    const r = await checkGemini({ ...base, gemini: gemini({ on: 'countTokens', err }) });
    expect(r.status).toBe('fail');
    expect(r.detail).toContain('countTokens on gemini-2.5-flash');
    expect(r.fix).toMatch(fix);
  });

  it('fails when generateContent fails after countTokens answered', async () => {
    const err = new GeminiCallError('over', 429, {});
    const r = await checkGemini({ ...base, gemini: gemini({ on: 'generate', err }) });
    expect(r).toMatchObject({ status: 'fail', detail: 'generateContent on gemini-2.5-flash: over' });
  });

  it('passes when both calls answer', async () => {
    const r = await checkGemini({ ...base, gemini: gemini(undefined) });
    expect(r).toMatchObject({ status: 'ok' });
    expect(r.detail).toContain('countTokens 7');
  });
});

/** A Batch API whose one batch goes through `states`, one a poll. */
function batchApi(states: BatchState[], opts: { lines?: string[]; uploadFails?: boolean } = {}) {
  const calls = { deleted: [] as string[], cancelled: [] as string[], uploaded: [] as string[] };
  let poll = 0;
  const info = (state: BatchState): BatchInfo => ({
    name: 'batches/b1',
    state,
    stats: { requestCount: 2, successfulRequestCount: 0, failedRequestCount: 0, pendingRequestCount: 0 },
    ...(state === 'SUCCEEDED' ? { responsesFile: 'files/out' } : {}),
  });
  const api: BatchApi = {
    async uploadJsonl(source) {
      if (opts.uploadFails) throw new GeminiCallError('Unsupported MIME type', 400, {});
      for await (const chunk of source) calls.uploaded.push(String(chunk));
      return { name: 'files/in', sizeBytes: 1 };
    },
    createBatch: async () => info(states[0]!),
    getBatch: async () => info(states[Math.min(++poll, states.length - 1)]!),
    listBatches: async function* () {},
    cancelBatch: async (name) => void calls.cancelled.push(name),
    responseLines: async function* () {
      yield* opts.lines ?? ['{"key":"a","response":{}}', '{"key":"b","response":{}}'];
    },
    deleteFile: async (name) => void calls.deleted.push(name),
  };
  return { api, calls };
}

function clock() {
  let t = 0;
  const sleep = async (ms: number) => {
    t += ms;
  };
  return { now: () => t, sleep };
}

describe('checkBatch', () => {
  const base = { model: 'gemini-2.5-flash', timeoutMs: 60_000, pollMs: 10_000 };

  it('passes a two-line batch through upload, create, poll and collect, and deletes its files', async () => {
    const { api, calls } = batchApi(['PENDING', 'RUNNING', 'SUCCEEDED']);
    const r = await checkBatch({ ...base, batch: api, ...clock() });
    expect(r).toMatchObject({ status: 'ok', detail: expect.stringContaining('2 of 2 lines answered') });
    expect(calls.uploaded.map((l) => JSON.parse(l).key)).toEqual(['a', 'b']);
    expect(calls.deleted).toEqual(['files/in', 'files/out']);
  });

  it('fails a batch that ended FAILED, and one whose lines carry errors', async () => {
    const failed = await checkBatch({ ...base, batch: batchApi(['PENDING', 'FAILED']).api, ...clock() });
    expect(failed).toMatchObject({ status: 'fail', detail: 'batches/b1 ended FAILED', required: true });
    const lines = ['{"key":"a","response":{}}', '{"key":"b","error":{"code":500}}'];
    const half = await checkBatch({ ...base, batch: batchApi(['SUCCEEDED'], { lines }).api, ...clock() });
    expect(half).toMatchObject({ status: 'fail', detail: '1 of 2 lines answered' });
  });

  it('cancels a batch still running at the timeout and warns (Batch promises 24 h)', async () => {
    const { api, calls } = batchApi(['PENDING', 'RUNNING']);
    const r = await checkBatch({ ...base, batch: api, ...clock() });
    expect(r).toMatchObject({ status: 'fail', required: false });
    expect(r.fix).toContain('--batch-timeout');
    expect(calls.cancelled).toEqual(['batches/b1']);
    expect(calls.deleted).toEqual(['files/in']);
  });

  it('names the step that failed', async () => {
    const r = await checkBatch({ ...base, batch: batchApi([], { uploadFails: true }).api, ...clock() });
    expect(r).toMatchObject({ status: 'fail', detail: 'upload: Unsupported MIME type' });
  });
});

describe('checkQueues', () => {
  const quotas = testQuotas();
  const planned = (model: string) => queueRateLimits(quotas.models[model]!, quotas.headroom);
  const control = { maxDispatchesPerSecond: 100, maxConcurrentDispatches: 100 };
  const queues = (over: Record<string, object | undefined> = {}): QueueReader => {
    const all: Record<string, object | undefined> = {
      'fanout-gemini-2-5-flash': planned('gemini-2.5-flash'),
      'fanout-gemini-2-5-pro': planned('gemini-2.5-pro'),
      'fanout-control': control,
      ...over,
    };
    return async (id) => all[id];
  };

  it('passes queues sized as queueRateLimits computes (Terraform may floor 0.001 lower)', async () => {
    const pro = planned('gemini-2.5-pro');
    const getQueue = queues({
      'fanout-gemini-2-5-pro': { ...pro, maxDispatchesPerSecond: pro.maxDispatchesPerSecond - 0.001 },
    });
    const r = await checkQueues({ getQueue, quotas, quotasFrom: 'q.json' });
    expect(r).toMatchObject({ status: 'ok', detail: expect.stringContaining('3 queues match q.json') });
  });

  it('fails a missing queue, another rate and another concurrency, naming each', async () => {
    const flash = planned('gemini-2.5-flash');
    const getQueue = queues({
      'fanout-gemini-2-5-flash': { ...flash, maxDispatchesPerSecond: 20, maxConcurrentDispatches: 0 },
      'fanout-control': undefined,
    });
    const r = await checkQueues({ getQueue, quotas, quotasFrom: 'q.json' });
    expect(r.status).toBe('fail');
    expect(r.detail).toBe(
      `fanout-gemini-2-5-flash dispatches 20/s, q.json plans ${flash.maxDispatchesPerSecond}/s; ` +
        'fanout-gemini-2-5-flash allows 0 concurrent dispatches, not 1 to 5000; fanout-control is missing',
    );
    expect(r.fix).toMatch(/apply Terraform again .*q\.json/);
  });

  it('says which role reads the queues when getQueue is refused', async () => {
    const refused = Object.assign(new Error('PERMISSION_DENIED'), { code: 7 });
    const r = await checkQueues({ getQueue: () => Promise.reject(refused), quotas, quotasFrom: 'q.json' });
    expect(r.fix).toContain('roles/cloudtasks.viewer');
  });
});

describe('checkBucket', () => {
  const reader = (exists: boolean, configs: string[][] | undefined): BucketReader => ({
    exists: async () => exists,
    notificationEventTypes: async () => configs,
  });

  it('fails without FANOUT_BUCKET and for a bucket that does not exist', async () => {
    expect((await checkBucket({}))[0]).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('FANOUT_BUCKET'),
    });
    const [gone] = await checkBucket({ bucket: 'b', reader: reader(false, []) });
    expect(gone).toMatchObject({ status: 'fail', detail: 'gs://b does not exist', required: true });
  });

  it('warns when no notification sends OBJECT_FINALIZE (bucket files would start no job)', async () => {
    const [, none] = await checkBucket({ bucket: 'b', reader: reader(true, [['OBJECT_DELETE']]) });
    expect(none).toMatchObject({ status: 'fail', required: false });
    expect(none!.fix).toContain('roles/pubsub.publisher');
    const [, all] = await checkBucket({ bucket: 'b', reader: reader(true, [[]]) });
    expect(all!.status).toBe('ok');
    const [, local] = await checkBucket({ bucket: 'b', reader: reader(true, undefined) });
    expect(local!.status).toBe('skipped');
  });
});

describe('checkIngest', () => {
  it.each([
    [new JobsApiError(403, undefined, 'Forbidden', 'GET /jobs'), /roles\/run\.invoker/],
    [new TypeError('fetch failed'), /--url \/ FANOUT_URL/],
    [
      new CliError('no Google identity token for https://i.example', EXIT.auth),
      /gcloud auth application-default login/,
    ],
    [new JobsApiError(502, undefined, 'Bad gateway', 'GET /jobs'), /logs/],
  ])('a failure (%s) says what to fix', async (err, fix) => {
    const r = await checkIngest({ url: 'https://i.example', list: () => Promise.reject(err) });
    expect(r).toMatchObject({ status: 'fail', required: true });
    expect(r.fix).toMatch(fix);
  });
});

describe('batchTimeoutSeconds', () => {
  it('takes whole seconds from 10 to a day and refuses the rest (a NaN would wait for ever)', () => {
    expect(batchTimeoutSeconds('900')).toBe(900);
    for (const bad of ['abc', '5', '1.5', '90000'])
      expect(() => batchTimeoutSeconds(bad)).toThrow(/10 to 86400/);
  });
});
