import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { jobIdForObject } from '../../functions/intake/handler.js';
import { getJob, jobExists, stack, waitForJob } from '../helpers/e2e.js';
import { storageClientFor, waitForObject } from '../helpers/storage.js';

// A JSONL file dropped into the bucket's inbox/ with the official Storage client becomes a job (the
// Eventarc stand-in delivers the finalize event to intake); the tick writes results/<same path>.

function bucket() {
  const s = stack();
  return storageClientFor(s.storageEmulatorHost, s.projectId).bucket(s.bucket);
}

const lines = (buf: Buffer) =>
  buf
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('bucket intake (inbox/ → results/)', () => {
  it('turns every line into a result line, in order; bad lines become error lines and the rest goes on', async () => {
    const name = `inbox/e2e/mixed-${Date.now()}.jsonl`;
    const input = [
      JSON.stringify({ key: 'a', prompt: 'first prompt' }),
      '{ this is not json',
      '',
      JSON.stringify({ prompt: 'no key: the line number is the key' }),
      JSON.stringify({ key: 'b' }),
      JSON.stringify({ key: 'a', prompt: 'a duplicate key' }),
      JSON.stringify({
        key: 'c',
        request: { contents: [{ role: 'user', parts: [{ text: 'a full request' }] }] },
      }),
      JSON.stringify({ key: 'huge', prompt: 'x'.repeat(300 * 1024) }),
    ].join('\n');
    const [file] = await bucket()
      .file(name)
      .save(input, {
        contentType: 'application/jsonl',
        metadata: { metadata: { model: 'gemini-e2e-intake' } },
      })
      .then(() => bucket().file(name).getMetadata());
    const jobId = jobIdForObject(stack().bucket, name, String(file.generation));

    const results = lines(await waitForObject(bucket().file(name.replace(/^inbox\//, 'results/')), 60_000));
    expect(results.map((r) => [r.key, r.index, 'response' in r ? 'ok' : 'error'])).toEqual([
      ['a', 0, 'ok'],
      ['2', 1, 'error'],
      ['4', 2, 'ok'],
      ['b', 3, 'error'],
      ['a', 4, 'error'],
      ['c', 5, 'ok'],
      // A line over the limit is never held, so even its key is not read: the line number stands in.
      ['8', 6, 'error'],
    ]);
    expect(JSON.stringify(results[0])).toContain('first prompt');
    expect((results[1]!.error as { message: string }).message).toMatch(/line 2: not valid JSON/);
    expect((results[3]!.error as { message: string }).message).toMatch(/line 5/);
    expect((results[4]!.error as { message: string }).message).toMatch(/duplicate key "a"/);
    expect((results[6]!.error as { message: string }).message).toMatch(/over \d+ bytes/);

    const summary = JSON.parse(
      (
        await waitForObject(bucket().file(`${name.replace(/^inbox\//, 'results/')}.summary.json`), 60_000)
      ).toString(),
    ) as Record<string, unknown>;
    expect(summary).toMatchObject({
      job: jobId,
      status: 'succeeded',
      mode: 'realtime',
      counts: { total: 7, succeeded: 3, failed: 4, pending: 0 },
      paths: { realtime: 3, batch: 0 },
    });
    expect((await getJob(jobId)).source).toBe(`gs://${stack().bucket}/${name}`);
  });

  it('reads gzip files and writes gzip results; a finalize event delivered again makes no second job', async () => {
    const name = `inbox/e2e/zipped-${Date.now()}.jsonl.gz`;
    const body = gzipSync(
      Array.from({ length: 20 }, (_, i) => JSON.stringify({ key: `k${i}`, prompt: `zipped ${i}` })).join(
        '\n',
      ),
    );
    await bucket()
      .file(name)
      .save(body, {
        contentType: 'application/gzip',
        metadata: { metadata: { model: 'gemini-e2e-intake' } },
      });
    const [meta] = await bucket().file(name).getMetadata();
    const jobId = jobIdForObject(stack().bucket, name, String(meta.generation));
    const results = lines(
      gunzipSync(await waitForObject(bucket().file(name.replace(/^inbox\//, 'results/')), 60_000)),
    );
    expect(results.map((r) => r.key)).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`));
    expect(results.every((r) => 'response' in r)).toBe(true);

    // The same event again, as Eventarc may deliver it: intake acknowledges it, and nothing changes.
    const before = await getJob(jobId);
    const again = await redeliver(name, String(meta.generation));
    expect(again).toBeLessThan(300);
    const after = await waitForJob(jobId, 30_000);
    expect(after.createdAt).toBe(before.createdAt);
    expect(after.counts).toEqual(before.counts);
  });

  it('ignores objects outside inbox/ and its own results/ (the loop guard)', async () => {
    const name = `results/e2e/not-input-${Date.now()}.jsonl`;
    await bucket()
      .file(name)
      .save(JSON.stringify({ prompt: 'never a job' }));
    const [meta] = await bucket().file(name).getMetadata();
    expect(await redeliver(name, String(meta.generation))).toBeLessThan(300);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await jobExists(jobIdForObject(stack().bucket, name, String(meta.generation)))).toBe(false);
  });
});

/** Posts a finalize CloudEvent for the object to intake, as Eventarc does (binary content mode). */
async function redeliver(name: string, generation: string): Promise<number> {
  const s = stack();
  const res = await fetch(s.intakeUrl, {
    method: 'POST',
    headers: {
      'ce-specversion': '1.0',
      'ce-id': `redelivery-${Date.now()}`,
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${s.bucket}`,
      'ce-type': 'google.cloud.storage.object.v1.finalized',
      'ce-subject': `objects/${name}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ bucket: s.bucket, name, generation }),
  });
  await res.arrayBuffer();
  return res.status;
}
