import { resolve } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createJobsClient, type JobsClient } from '../../functions/api/client.js';
import type { ResultEntry } from '../../functions/api/jobs.js';
import type { AdaptiveRate } from '../../functions/core/adaptive-rate.js';
import { type Stack, startStack } from '../../infra/local/stack.js';
import { cli, cliEnv } from '../helpers/cli.js';

// A deployment on Vertex AI end to end (issue 23): the functions call Gemini with `vertexai: true`
// and Application Default Credentials (an external_account file whose token exchange is the
// stand-in's), the stand-in's shared pool throttles by load (its capacity swings over time), and
// the adaptive rate (core/adaptive-rate.ts) finds the pool and settles under it. This file runs its
// own local cloud (on the suite's Firestore emulator, as another project).

const PROJECT = 'fanout-e2e-vertex';
const MODEL = 'gemini-e2e-vertex';
const ITEMS = 1000;
/** The shared pool: 600 requests a minute ± 20% over two minutes, counted over 10 s windows. */
const POOL = { rpm: 600, swing: 0.2, periodMs: 120_000, windowMs: 10_000 };

let local: Stack;
let client: JobsClient;

beforeAll(async () => {
  local = await startStack({
    projectId: PROJECT,
    portBase: 0,
    firestoreHost: inject('firestoreEmulatorHost'),
    quotasFile: resolve(import.meta.dirname, '..', 'fixtures', 'quotas.vertex.json'),
    vertex: { location: 'us-central1' },
    standIn: { vertex: { pool: POOL } },
    logLevel: process.env.E2E_LOG_LEVEL ?? 'silent',
  });
  client = createJobsClient(local.info.ingestUrl);
}, 180_000);

afterAll(async () => {
  await local?.close();
});

describe('a batch job on Vertex AI', () => {
  it('goes through Vertex batch prediction from the bucket and back, every item answered once, no realtime call', async () => {
    // Arrange
    const prompts = Array.from({ length: 40 }, (_, i) => `Batch item ${i}.`);
    const before = local.standIn!.stats().models[MODEL]?.requests ?? 0;

    // Act
    const { id } = await client.submit({ model: MODEL, mode: 'batch', prompts });
    const job = await client.waitFor(id, { timeoutMs: 120_000, intervalMs: 1000 });
    const lines: ResultEntry[] = [];
    for await (const entry of client.resultsJsonl(id)) lines.push(entry);
    const left = await listObjects('staging/vertex-');

    // Assert
    expect(job.status).toBe('succeeded');
    expect(job.counts).toMatchObject({ total: 40, succeeded: 40, failed: 0 });
    expect(job.batches?.[0]?.name).toMatch(
      new RegExp(`^projects/${PROJECT}/locations/us-central1/batchPredictionJobs/\\d+$`),
    );
    lines.forEach((line, i) => {
      expect(line).toMatchObject({ key: String(i), index: i });
      expect(JSON.stringify(line)).toContain(`echo: Batch item ${i}.`);
    });
    expect(local.standIn!.stats().models[MODEL]?.requests ?? 0).toBe(before);
    // Inputs and outputs are removed once collected.
    expect(left).toEqual([]);
  }, 180_000);
});

/** Object names under `prefix` in the stack's bucket. */
async function listObjects(prefix: string): Promise<string[]> {
  const res = await fetch(
    `${local.info.storageEmulatorHost}/storage/v1/b/${local.info.bucket}/o?prefix=${encodeURIComponent(prefix)}`,
  );
  const body = (await res.json()) as { items?: Array<{ name: string }> };
  return (body.items ?? []).map((o) => o.name);
}

describe('a job on Vertex AI under a busy shared pool', () => {
  it('answers every item once; the adaptive rate settles under the pool with few 429s', async () => {
    // Arrange
    const prompts = Array.from({ length: ITEMS }, (_, i) => `Vertex item ${i}: one line, please.`);

    // Act
    const { id } = await client.submit({ model: MODEL, prompts });
    const job = await client.waitFor(id, { timeoutMs: 420_000, intervalMs: 1000 });
    const lines: ResultEntry[] = [];
    for await (const entry of client.resultsJsonl(id)) lines.push(entry);
    const stats = local.standIn!.stats().models[MODEL]!;
    const ledger = await new Firestore({ projectId: PROJECT }).collection('ledgers').doc(MODEL).get();
    const rate = JSON.parse(ledger.get('adaptiveJson')) as AdaptiveRate;

    // Assert: every answer came through Vertex (the stand-in counts only admitted calls), once.
    expect(job.status).toBe('succeeded');
    expect(job.counts).toMatchObject({ total: ITEMS, succeeded: ITEMS, failed: 0 });
    expect(lines.map((l) => l.index)).toEqual(prompts.map((_, i) => i));
    expect(stats.admitted).toBe(ITEMS);
    // The pool was met (429s happened and lowered the rate) and the rate stayed under the ceiling.
    expect(rate.decreasedAtMs).toBeDefined();
    expect(rate.rpm).toBeLessThan(1500);
    const per1000 = (stats.rejected429 * 1000) / ITEMS;
    process.stdout.write(
      `vertex e2e: ${stats.rejected429} 429s for ${ITEMS} items (${per1000.toFixed(1)} per 1,000); adaptive rate now ${Math.round(rate.rpm)} RPM; pool ${POOL.rpm} ± ${POOL.swing * 100}%\n`,
    );
    expect(per1000).toBeLessThan(100);
    const counted = job.quota429s as Record<string, Record<string, number>> | undefined;
    expect(counted?.[MODEL]?.unknown).toBe(stats.rejected429);
  }, 480_000);
});

// After the jobs above: doctor's own calls would count in their stand-in figures.
describe('gemini-fanout doctor on Vertex AI', () => {
  it('finds the Vertex target and ADC, reaches Gemini through Vertex, and runs a batch by prediction', async () => {
    // Arrange: the environment of a deployment on Vertex AI (no key), as the functions have it.
    const s = local.info;
    const env = cliEnv({
      GOOGLE_CLOUD_PROJECT: s.projectId,
      FANOUT_BUCKET: s.bucket,
      CLOUD_TASKS_EMULATOR_HOST: s.tasksEmulatorHost,
      STORAGE_EMULATOR_HOST: s.storageEmulatorHost,
      GEMINI_BASE_URL: s.geminiBaseUrl,
      ...local.vertexEnv,
    });
    delete env.GEMINI_API_KEY;
    const quotas = resolve(import.meta.dirname, '..', 'fixtures', 'quotas.vertex.json');

    // Act
    const result = await cli(['doctor', '--url', s.ingestUrl, '--quotas', quotas, '--batch'], { env });

    // Assert
    expect(result.stdout).toMatch(
      /^Gemini on Vertex AI +\| ok: no key: Application Default Credentials call Vertex AI in fanout-e2e-vertex, location us-central1/m,
    );
    expect(result.stdout).toMatch(
      /^Google credentials \(ADC\) +\| ok: Application Default Credentials found \(project fanout-e2e-vertex\)/m,
    );
    expect(result.stdout).toMatch(
      /^Gemini reachable +\| ok: gemini-e2e-vertex at http:\/\/127\.0\.0\.1:\d+: countTokens \d+/m,
    );
    expect(result.stdout).toMatch(
      /^Batch API round trip +\| ok: projects\/fanout-e2e-vertex\/locations\/us-central1\/batchPredictionJobs\/\d+: upload, create, poll and collect; 2 of 2/m,
    );
    expect(result.stdout).not.toMatch(/Gemini API key/);
  }, 120_000);
});
