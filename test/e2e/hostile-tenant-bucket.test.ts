import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { Firestore, type Timestamp } from '@google-cloud/firestore';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createJobsClient, JobsApiError, type JobsClient } from '../../functions/api/client.js';
import type { CreateJobRequest, ResultEntry } from '../../functions/api/jobs.js';
import { ownerPrefix } from '../../functions/core/owner-prefix.js';
import { queueIdForModel } from '../../functions/core/quotas.js';
import { jobIdForObject } from '../../functions/intake/handler.js';
import { sampleMedia } from '../../infra/local/sample-media.js';
import { frontFault, idToken, jobExists, stack } from '../helpers/e2e.js';
import { storageClientFor, waitForObject } from '../helpers/storage.js';

// The tenant section of the hostile catalogue, for media and the bucket, through the local cloud
// with two owners (alice and bob are FANOUT_BUCKET_OWNERS of the suite's stack, test/helpers/
// global-setup.ts): alice pointing at bob's media is refused in the words a missing object gets, at
// submit and at fetch; the service's own prefixes are never media; a file under alice's inbox
// prefix is her job (bob gets 404), its results under her prefix; a file over the caps stops at the
// line it passed them, says so in its summary, and the instance keeps serving.

const MODEL = 'gemini-e2e-tenant';
const QUEUE = queueIdForModel(MODEL);
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const PNG_1X1 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

const clientOf = (email: string): JobsClient =>
  createJobsClient(stack().ingestUrl, { tokenProvider: () => idToken(email) });

function bucket() {
  const s = stack();
  return storageClientFor(s.storageEmulatorHost, s.projectId).bucket(s.bucket);
}

const gs = (object: string) => `gs://${stack().bucket}/${object}`;
const media = (owner: string, name: string) => `media/${ownerPrefix(owner)}/${name}`;
const withMedia = (gcsUri: string): CreateJobRequest => ({
  model: MODEL,
  mode: 'realtime',
  requests: [{ key: 'm', prompt: 'What is in this image?', media: [{ gcsUri }] }],
});

/** The refusal of a submit: its status and message with the URI taken out. */
async function refusal(client: JobsClient, body: CreateJobRequest, uri: string) {
  try {
    await client.submit(body);
  } catch (err) {
    if (!(err instanceof JobsApiError)) throw err;
    return { status: err.status, message: err.message.replaceAll(uri, 'URI') };
  }
  throw new Error(`${uri} was accepted`);
}

async function entries(client: JobsClient, id: string): Promise<ResultEntry[]> {
  const all: ResultEntry[] = [];
  for await (const entry of client.resultsJsonl(id)) all.push(entry);
  return all;
}

const errorOf = (entry: ResultEntry | undefined) =>
  entry && 'error' in entry ? (entry.error as { message: string }).message : undefined;

async function drop(name: string, body: string | Buffer): Promise<string> {
  const file = bucket().file(name);
  // Created only if absent, as a careful client writes: the library then sends it again after a
  // connection the emulator closed as the upload began (a CI run's EPIPE), as it never retries a
  // write without a precondition.
  await file.save(body, {
    metadata: { metadata: { model: MODEL } },
    resumable: false,
    preconditionOpts: { ifGenerationMatch: 0 },
  });
  const [meta] = await file.getMetadata();
  return jobIdForObject(stack().bucket, name, String(meta.generation));
}

describe('hostile tenants: media', () => {
  const db = new Firestore({
    projectId: stack().projectId,
    host: inject('firestoreEmulatorHost'),
    ssl: false,
  });
  afterAll(async () => {
    await frontFault(QUEUE, 503, 0);
    await db.terminate();
  });

  it('tells an owner its prefix, and reads its own media and the shared samples', async () => {
    const alice = clientOf(ALICE);
    await bucket().file(media(ALICE, 'own.png')).save(PNG_1X1, { contentType: 'image/png' });
    // The sample images every local cloud uploads, under the shared media/samples/ (MEDIA_GCS_SHARED).
    const sample = `gs://${sampleMedia()[0]!.bucket}/${sampleMedia()[0]!.name}`;

    const list = await alice.list();
    const id = (
      await alice.submit({
        model: MODEL,
        mode: 'realtime',
        requests: [
          { key: 'own', prompt: 'What is this?', media: [{ gcsUri: gs(media(ALICE, 'own.png')) }] },
          { key: 'sample', prompt: 'And this?', media: [{ gcsUri: sample }] },
        ],
      })
    ).id;
    const job = await alice.waitFor(id, { timeoutMs: 60_000 });

    expect(list.owner).toMatchObject({ id: ALICE, prefix: ownerPrefix(ALICE) });
    expect(list.owner?.mediaLocations).toContain(gs(`media/${ownerPrefix(ALICE)}/`));
    expect(job.counts).toMatchObject({ succeeded: 2, failed: 0 });
    // Both the job and its items expire RETENTION_DAYS (30 by default) after creation (Firestore TTL).
    const stored = await db.collection('jobs').doc(id).get();
    const item = await db.collection('jobs').doc(id).collection('items').doc('000000000').get();
    const days = (at: unknown) =>
      ((at as Timestamp).toMillis() - (stored.get('createdAt') as Timestamp).toMillis()) / 86_400_000;
    expect(days(stored.get('expireAt'))).toBeCloseTo(30, 1);
    expect(days(item.get('expireAt'))).toBeCloseTo(30, 1);
  });

  it("refuses bob's media to alice at submit exactly as an object that is not there", async () => {
    const alice = clientOf(ALICE);
    await bucket().file(media(BOB, 'secret.png')).save(PNG_1X1, { contentType: 'image/png' });
    const theirs = gs(media(BOB, 'secret.png'));
    const none = gs(media(BOB, 'no-such.png'));

    const existing = await refusal(alice, withMedia(theirs), theirs);
    const missing = await refusal(alice, withMedia(none), none);

    expect(existing.status).toBe(400);
    expect(existing).toEqual(missing);
    expect(existing.message).not.toContain(ownerPrefix(BOB));
  });

  it.each(['inbox/', 'staging/', 'answers/', 'results/', `results/${ownerPrefix(ALICE)}/`, ''])(
    'never takes the service prefix %j as media, even for its own owner',
    async (prefix) => {
      const uri = gs(`${prefix}x.jsonl`);

      const refused = await refusal(clientOf(ALICE), withMedia(uri), uri);

      expect(refused.status).toBe(400);
      expect(refused.message).toMatch(/outside the allowed locations/);
    },
  );

  it("refuses at fetch what the job's owner may not read, in the words a missing object gets", async () => {
    // Arrange: alice's job, held at Cloud Run's front, becomes bob's before the worker fetches.
    const alice = clientOf(ALICE);
    const bob = clientOf(BOB);
    await bucket().file(media(ALICE, 'mine.png')).save(PNG_1X1, { contentType: 'image/png' });
    await frontFault(QUEUE, 503, 30);
    const uri = gs(media(ALICE, 'mine.png'));
    const id = (await alice.submit(withMedia(uri))).id;
    await db.collection('jobs').doc(id).update({ owner: BOB });
    const missingUri = gs(media(BOB, `gone-${randomUUID()}.png`));
    const control = (await bob.submit(withMedia(missingUri))).id;

    // Act
    await frontFault(QUEUE, 503, 0);
    await bob.waitFor(id, { timeoutMs: 60_000 });
    await bob.waitFor(control, { timeoutMs: 60_000 });
    const [refused] = await entries(bob, id);
    const [missing] = await entries(bob, control);

    // Assert
    expect(errorOf(refused)?.replace(uri, 'URI')).toBe(errorOf(missing)?.replace(missingUri, 'URI'));
    expect(errorOf(refused)).toMatch(/was not found or is not allowed/);
  });
});

describe('hostile tenants: the bucket', () => {
  it("makes alice's file under her prefix her job: results under her prefix, 404 to bob", async () => {
    const prefix = ownerPrefix(ALICE);
    const name = `inbox/${prefix}/run-${Date.now()}.jsonl`;

    const jobId = await drop(name, '{"key":"a","prompt":"hello"}\n{"key":"b","prompt":"world"}\n');
    const results = await waitForObject(bucket().file(name.replace(/^inbox\//, 'results/')), 90_000);
    const job = await clientOf(ALICE).get(jobId);
    const listed = await clientOf(ALICE).list();
    const bobs = await clientOf(BOB)
      .get(jobId)
      .catch((err: unknown) => err);

    expect(job).toMatchObject({ source: gs(name), counts: { succeeded: 2 } });
    expect(listed.jobs.map((j) => j.id)).toContain(jobId);
    expect(results.toString().trim().split('\n')).toHaveLength(2);
    expect(bobs).toBeInstanceOf(JobsApiError);
    expect((bobs as JobsApiError).status).toBe(404);
  });

  it('refuses a file under the prefix of no bucket owner, saying so in its summary', async () => {
    const stranger = ownerPrefix(`mallory-${randomUUID()}@example.com`);
    const name = `inbox/${stranger}/run.jsonl`;

    const jobId = await drop(name, '{"prompt":"hello"}\n');
    const summary = JSON.parse(
      (await waitForObject(bucket().file(`results/${stranger}/run.jsonl.summary.json`), 60_000)).toString(),
    );

    expect(summary).toMatchObject({ job: null, status: 'failed' });
    expect(summary.error.message).toMatch(/no bucket owner/);
    expect(await jobExists(jobId)).toBe(false);
  });

  it('stops a file at the line past BUCKET_MAX_LINES, says so in the summary, and keeps serving', async () => {
    // The suite's stack caps a file at 25,000 lines: 25,001 blank lines pass it at the last.
    const name = `inbox/${ownerPrefix(ALICE)}/long-${Date.now()}.jsonl`;

    const jobId = await drop(name, '\n'.repeat(25_001));
    const summary = JSON.parse(
      (
        await waitForObject(bucket().file(`${name.replace(/^inbox\//, 'results/')}.summary.json`), 60_000)
      ).toString(),
    );
    const after = await clientOf(ALICE).submit({ model: MODEL, prompts: ['still serving?'] });

    expect(summary, JSON.stringify(summary)).toMatchObject({
      status: 'failed',
      stoppedAt: { line: 25_001, reason: 'lines', cap: 25_000 },
    });
    expect(summary.error.message).toMatch(/stopped at line 25001/);
    expect(await jobExists(jobId)).toBe(false);
    expect((await clientOf(ALICE).waitFor(after.id, { timeoutMs: 60_000 })).status).toBe('succeeded');
  });

  it('stops a gzip file that inflates past BUCKET_MAX_BYTES, says so in the summary, and keeps serving', async () => {
    // 321 MiB of one long line once inflated (the cap is 320 MiB), about 320 KiB on the wire.
    const name = `inbox/${ownerPrefix(ALICE)}/bomb-${Date.now()}.jsonl.gz`;
    const bomb = gzipSync(Buffer.alloc(321 * 1024 * 1024, 0x61), { level: 9 });

    const jobId = await drop(name, bomb);
    const summary = JSON.parse(
      (
        await waitForObject(bucket().file(`${name.replace(/^inbox\//, 'results/')}.summary.json`), 90_000)
      ).toString(),
    );
    const after = await clientOf(ALICE).submit({ model: MODEL, prompts: ['still serving?'] });

    expect(summary, JSON.stringify(summary)).toMatchObject({
      status: 'failed',
      stoppedAt: { line: 1, reason: 'bytes', cap: 320 * 1024 * 1024 },
    });
    expect(await jobExists(jobId)).toBe(false);
    expect((await clientOf(ALICE).waitFor(after.id, { timeoutMs: 60_000 })).status).toBe('succeeded');
  });
});
