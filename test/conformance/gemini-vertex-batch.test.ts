import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sdkFor } from '../../functions/platform/gemini/client.js';
import { createVertexBatchApi, KEY_LABEL } from '../../functions/platform/gemini/vertex-batch.js';
import { createObjectStore } from '../../functions/platform/object-store.js';
import { type GeminiStandIn, startGeminiStandIn } from '../../infra/local/gemini/server.js';
import { type StorageEmulator, startStorageEmulator } from '../../infra/local/storage/server.js';
import { writeVertexAdc } from '../../infra/local/vertex-adc.js';
import { storageClientFor } from '../helpers/storage.js';

// Vertex AI batch prediction end to end on the stand-in (gemini/vertex-batch.ts) and the storage
// emulator, driven by the official SDK (`batches.create` with a gs:// source) and by the product's
// BatchApi on Vertex (platform/gemini/vertex-batch.ts): input and output in Cloud Storage, no Files API.

const PROJECT = 'fanout-vertex-batch';
const LOCATION = 'us-central1';
const BUCKET = 'fanout-vertex-batch-bucket';
const MODEL = 'gemini-2.5-flash';
const SUBJECT = 'local-subject-token-for-vertex-batch';

let standIn: GeminiStandIn;
let storageEmulator: StorageEmulator;
let storage: Storage;
let dir: string;

beforeAll(async () => {
  storageEmulator = await startStorageEmulator({ projectId: PROJECT });
  storage = storageClientFor(storageEmulator.url, PROJECT);
  await storage.createBucket(BUCKET);
  standIn = await startGeminiStandIn({
    vertex: { project: PROJECT, subjectToken: SUBJECT, storageUrl: storageEmulator.url },
    batch: { pendingMs: 50, runningMs: 200 },
  });
  dir = mkdtempSync(join(tmpdir(), 'vertex-adc-'));
  vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', writeVertexAdc(dir, standIn.url, SUBJECT));
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await standIn?.close();
  await storageEmulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

const vertexSdk = () =>
  sdkFor({ apiKey: '', baseUrl: standIn.url, vertex: { project: PROJECT, location: LOCATION } });

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = await read();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('timed out');
}

describe('Vertex batch prediction (stand-in, official SDK)', () => {
  it('creates a batchPredictionJob from a gs:// JSONL and writes predictions.jsonl beside the output prefix', async () => {
    // Arrange
    const input = [
      { request: { contents: [{ role: 'user', parts: [{ text: 'first' }] }], labels: { k: 'a' } } },
      { request: { contents: [] } },
    ];
    await storage
      .bucket(BUCKET)
      .file('in/sdk.jsonl')
      .save(input.map((l) => JSON.stringify(l)).join('\n'));
    const ai = vertexSdk();
    // Act
    const created = await ai.batches.create({
      model: MODEL,
      src: `gs://${BUCKET}/in/sdk.jsonl`,
      config: { displayName: 'sdk-run', dest: `gs://${BUCKET}/out/sdk/` },
    });
    const done = await until(
      () => ai.batches.get({ name: created.name! }),
      (j) => j.state === 'JOB_STATE_SUCCEEDED' || j.state === 'JOB_STATE_FAILED',
    );
    const directory = (done as { outputInfo?: { gcsOutputDirectory?: string } }).outputInfo
      ?.gcsOutputDirectory;
    const object = directory!.replace(`gs://${BUCKET}/`, '');
    const [bytes] = await storage.bucket(BUCKET).file(`${object}/predictions.jsonl`).download();
    const lines = bytes
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // Assert
    expect(created.name).toMatch(
      new RegExp(`^projects/${PROJECT}/locations/${LOCATION}/batchPredictionJobs/\\d+$`),
    );
    expect(created.state).toBe('JOB_STATE_PENDING');
    expect(done.state).toBe('JOB_STATE_SUCCEEDED');
    expect(directory).toMatch(new RegExp(`^gs://${BUCKET}/out/sdk/prediction-model-`));
    expect((done as { completionStats?: unknown }).completionStats).toEqual({
      successfulCount: '1',
      failedCount: '1',
      incompleteCount: '0',
    });
    expect(lines[0]).toMatchObject({ status: '', request: { labels: { k: 'a' } } });
    expect(lines[0].response.candidates[0].content.parts[0].text).toMatch(/^echo: first/);
    expect(lines[1].status).toMatch(/^Bad Request: /);
    expect(lines[1].response).toBeUndefined();
  });

  it('refuses a job without a bearer token', async () => {
    // Act
    const bare = await fetch(
      `${standIn.url}/v1beta1/projects/${PROJECT}/locations/${LOCATION}/batchPredictionJobs`,
      {
        method: 'POST',
        body: '{}',
      },
    );
    // Assert
    expect(bare.status).toBe(401);
  });

  it("serves the product's batch cycle interface: lines in by key, results out by key, in the bucket", async () => {
    // Arrange
    const api = createVertexBatchApi({
      sdk: vertexSdk(),
      objects: createObjectStore(storage, BUCKET),
      bucket: BUCKET,
    });
    const keys = ['000000002', '000000000', '000000001'];
    async function* lines() {
      for (const key of keys)
        yield `${JSON.stringify({ key, request: { contents: [{ role: 'user', parts: [{ text: `item ${key}` }] }] } })}\n`;
    }
    // Act
    const file = await api.uploadJsonl(lines(), { displayName: 'fanout-job-1-part-0' });
    const created = await api.createBatch(MODEL, file.name, 'fanout-job-1-part-0');
    const done = await until(
      () => api.getBatch(created.name),
      (b) => b.state === 'SUCCEEDED' || b.state === 'FAILED',
    );
    const listed: string[] = [];
    for await (const b of api.listBatches()) listed.push(b.name);
    const results: Array<{
      key: string;
      response?: { candidates: Array<{ content: { parts: Array<{ text: string }> } }> };
    }> = [];
    for await (const line of api.responseLines(done.responsesFile!)) results.push(JSON.parse(line));
    await api.deleteFile(file.name);
    const [inputLeft] = await storage
      .bucket(BUCKET)
      .file('staging/vertex-batch/fanout-job-1-part-0.jsonl')
      .exists();
    // Assert
    expect(file.name).toBe(`gs://${BUCKET}/staging/vertex-batch/fanout-job-1-part-0.jsonl`);
    expect(done).toMatchObject({
      state: 'SUCCEEDED',
      stats: { requestCount: 3, successfulRequestCount: 3, failedRequestCount: 0, pendingRequestCount: 0 },
    });
    expect(listed).toContain(created.name);
    expect(results.map((r) => r.key).sort()).toEqual([...keys].sort());
    for (const r of results)
      expect(r.response?.candidates[0]?.content.parts[0]?.text).toMatch(`echo: item ${r.key}`);
    expect(inputLeft).toBe(false);
    expect(KEY_LABEL).toBe('fanout_key');
  });

  it('reads a cancelled job as CANCELLED', async () => {
    // Arrange
    standIn.configure({ batch: { pendingMs: 60_000 } });
    const api = createVertexBatchApi({
      sdk: vertexSdk(),
      objects: createObjectStore(storage, BUCKET),
      bucket: BUCKET,
    });
    async function* one() {
      yield `${JSON.stringify({ key: '0', request: { contents: [{ role: 'user', parts: [{ text: 'x' }] }] } })}\n`;
    }
    const file = await api.uploadJsonl(one(), { displayName: 'cancel-me' });
    const created = await api.createBatch(MODEL, file.name, 'cancel-me');
    // Act
    await api.cancelBatch(created.name);
    const after = await api.getBatch(created.name);
    // Assert
    expect(created.state).toBe('PENDING');
    expect(after.state).toBe('CANCELLED');
    standIn.configure({ batch: { pendingMs: 50 } });
  });
});
