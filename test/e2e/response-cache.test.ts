import { resolve } from 'node:path';
import { Firestore, Timestamp } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createJobsClient, type JobsClient } from '../../functions/api/client.js';
import type { CreateJobRequest, JobView, ResultEntry } from '../../functions/api/jobs.js';
import { standInControl } from '../../infra/local/gemini/control.js';
import { localIdToken } from '../../infra/local/identity.js';
import { type Stack, startStack } from '../../infra/local/stack.js';

/**
 * The response cache through the local cloud: a stack of its own with RESPONSE_CACHE_TTL_HOURS on
 * (the suite's stack runs without the cache: its files send the same prompts in many jobs), on the
 * suite's Firestore emulator under another project. Gemini's calls are counted by the stand-in. The
 * model plans 60 requests a minute, so a repeat later in a job starts after the first one's answer
 * is recorded.
 */
const MODEL = 'gemini-e2e-cancel';
const PROJECT = 'fanout-e2e-cache';
let stack: Stack;
let db: Firestore;

beforeAll(async () => {
  const firestoreHost = inject('firestoreEmulatorHost') ?? process.env.FIRESTORE_EMULATOR_HOST!;
  stack = await startStack({
    projectId: PROJECT,
    portBase: 0,
    firestoreHost,
    quotasFile: resolve(import.meta.dirname, '..', 'fixtures', 'quotas.e2e.json'),
    schedulerIntervalMs: 1000,
    geminiTimeoutMs: 5000,
    standIn: { latency: { '*': { meanMs: 40, jitterMs: 30 } } },
    responseCacheTtlHours: 24,
    logLevel: process.env.E2E_LOG_LEVEL ?? 'silent',
  });
  db = new Firestore({ projectId: PROJECT, host: firestoreHost, ssl: false });
});

afterAll(async () => {
  await db?.terminate();
  await stack?.close();
});

const client = (email: string): JobsClient =>
  createJobsClient(stack.info.ingestUrl, {
    tokenProvider: () =>
      localIdToken(email, { issuerUrl: stack.info.idIssuerUrl, audience: stack.info.ingestUrl }),
  });
const ana = () => client('ana@example.com');

/** Gemini calls of the model so far (the stand-in's count of realtime requests). */
async function geminiCalls(): Promise<number> {
  return (await standInControl(stack.info.geminiBaseUrl).stats()).models[MODEL]?.requests ?? 0;
}

/** Runs a job to its end: its view, its result lines, and the Gemini calls it made. */
async function run(jobs: JobsClient, body: Omit<CreateJobRequest, 'model'>) {
  const before = await geminiCalls();
  const { id } = await jobs.submit({ model: MODEL, mode: 'realtime', ...body });
  const view: JobView = await jobs.waitFor(id, { timeoutMs: 60_000, intervalMs: 300 });
  const lines: ResultEntry[] = [];
  for await (const line of jobs.resultsJsonl(id)) lines.push(line);
  return { id, view, lines, calls: (await geminiCalls()) - before };
}

const nonce = Math.random().toString(36).slice(2, 8);
const prompts = [`Name a colour ${nonce}.`, `Name a fruit ${nonce}.`, `Name a tree ${nonce}.`];

describe('the response cache', () => {
  it('calls Gemini once per distinct request in a job, then not at all for the same owner', async () => {
    const first = await run(ana(), { prompts: [...prompts, ...prompts] });

    expect(first.view.counts).toMatchObject({ total: 6, succeeded: 6 });
    expect(first.calls).toBe(3);
    expect(first.view.cache?.hits).toBe(3);
    const paidLines = first.lines.slice(0, 3);
    expect(first.lines.slice(3)).toEqual(
      paidLines.map((l, i) => ({
        ...l,
        key: String(i + 3),
        index: i + 3,
        metadata: { cached: true, cachedFromJob: first.id },
      })),
    );

    const again = await run(ana(), { prompts });

    expect(again.calls).toBe(0);
    expect(again.view).toMatchObject({
      status: 'succeeded',
      counts: { total: 3, succeeded: 3 },
      costUsd: 0,
      usage: { promptTokens: 0, outputTokens: 0 },
    });
    expect(again.view.cache).toEqual({ hits: 3, savedUsd: expect.closeTo(first.view.costUsd, 9) });
    expect(again.lines.map((l) => ('response' in l ? l.response : undefined))).toEqual(
      paidLines.map((l) => ('response' in l ? l.response : undefined)),
    );
  });

  it('calls Gemini for another owner, for a job with cache: false, and once the entries expired', async () => {
    await run(ana(), { prompts }); // the entries exist (or are refreshed) for ana

    const other = await run(client('bo@example.com'), { prompts });
    const optOut = await run(ana(), { prompts, cache: false });
    const entries = await db.collection('responseCache').get();
    await Promise.all(
      entries.docs.map((d) => d.ref.update({ expireAt: Timestamp.fromMillis(Date.now() - 1000) })),
    );
    const expired = await run(ana(), { prompts });

    expect(other.calls).toBe(3);
    expect(optOut.calls).toBe(3);
    expect(expired.calls).toBe(3);
    for (const r of [other, optOut, expired]) {
      expect(r.view.cache).toBeUndefined();
      expect(r.view.costUsd).toBeGreaterThan(0);
    }
  });
});
