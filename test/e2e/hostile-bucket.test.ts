import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { jobIdForObject } from '../../functions/intake/handler.js';
import { jobExists, stack, waitForBucketJob } from '../helpers/e2e.js';
import { storageClientFor, waitForObject } from '../helpers/storage.js';

// The catalogue of bad bucket input, end to end: bad lines of a JSONL file (each must become an
// error line of its own, the good lines around it answered), files that must never become jobs,
// and CloudEvents that must be acknowledged without a job. Read it as a table: what was sent, and
// what the user finds in results/.

const MODEL = 'gemini-e2e-intake';

function bucket() {
  const s = stack();
  return storageClientFor(s.storageEmulatorHost, s.projectId).bucket(s.bucket);
}

const parse = (buf: Buffer) =>
  buf
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map(
      (l) => JSON.parse(l) as { key: string; index: number; response?: unknown; error?: { message: string } },
    );

const request = (extra: Record<string, unknown>) => ({
  request: { contents: [{ parts: [{ text: 'x' }] }], ...extra },
});

const BAD_LINES: Array<{ what: string; line: string; says: RegExp }> = [
  { what: 'broken JSON', line: '{"key": "k1", "prompt": ', says: /not valid JSON/ },
  { what: 'a JSON array', line: '[1, 2]', says: /expected object, received array/ },
  { what: 'JSON null', line: 'null', says: /expected object, received null/ },
  { what: 'a JSON string', line: '"a prompt without braces"', says: /expected object, received string/ },
  { what: 'no prompt and no request', line: '{"key": "k5"}', says: /exactly one of prompt or request/ },
  { what: 'a prompt that is a number', line: '{"prompt": 3}', says: /prompt/ },
  { what: 'an empty prompt', line: '{"key": "k7", "prompt": ""}', says: /must not be empty/ },
  {
    what: 'a request without contents',
    line: JSON.stringify({ key: 'k8', request: { contents: [] } }),
    says: /contents/,
  },
  {
    what: 'four candidates',
    line: JSON.stringify({ key: 'k9', ...request({ generationConfig: { candidateCount: 4 } }) }),
    says: /candidateCount 4 > 1/,
  },
  {
    what: 'Google Search as a tool',
    line: JSON.stringify({ key: 'k10', ...request({ tools: [{ googleSearch: {} }] }) }),
    says: /googleSearch/,
  },
  {
    what: "another user's inbox file as media",
    line: JSON.stringify({
      key: 'k11',
      prompt: 'a',
      media: [{ gcsUri: 'gs://fanout-e2e-fanout/inbox/theirs.jsonl' }],
    }),
    says: /outside the allowed locations/,
  },
  {
    what: 'http media',
    line: JSON.stringify({ key: 'k12', prompt: 'a', media: [{ url: 'http://example.com/a.png' }] }),
    says: /https/,
  },
  {
    what: 'a key of 300 characters',
    line: JSON.stringify({ key: 'k'.repeat(300), prompt: 'a' }),
    says: /key/,
  },
  {
    what: 'a line over 256 KiB',
    line: JSON.stringify({ key: 'k14', prompt: 'x'.repeat(300 * 1024) }),
    says: /over \d+ bytes/,
  },
  {
    what: 'a key seen before',
    line: JSON.stringify({ key: 'good-0', prompt: 'again' }),
    says: /duplicate key "good-0"/,
  },
];

async function drop(
  name: string,
  body: string | Buffer,
  metadata: Record<string, string> = { model: MODEL },
) {
  const file = bucket().file(name);
  await file.save(body, { metadata: { metadata } });
  const [meta] = await file.getMetadata();
  return jobIdForObject(stack().bucket, name, String(meta.generation));
}

/** A finalize CloudEvent as Eventarc posts it (binary content mode), with what the test changes. */
async function postEvent(overrides: { type?: string; data?: unknown }): Promise<number> {
  const s = stack();
  const res = await fetch(s.intakeUrl, {
    method: 'POST',
    headers: {
      'ce-specversion': '1.0',
      'ce-id': `hostile-${Date.now()}-${Math.random()}`,
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${s.bucket}`,
      'ce-type': overrides.type ?? 'google.cloud.storage.object.v1.finalized',
      'ce-subject': 'objects/inbox/x.jsonl',
      'content-type': 'application/json',
    },
    body: JSON.stringify(overrides.data ?? {}),
  });
  await res.arrayBuffer();
  return res.status;
}

describe('hostile bucket input', () => {
  it('turns each bad line into its own error line and answers the good lines around them', async () => {
    // Arrange: good lines between the bad ones.
    const name = `inbox/hostile/lines-${Date.now()}.jsonl`;
    const lines = BAD_LINES.flatMap((b, n) => [
      JSON.stringify({ key: `good-${n}`, prompt: `good ${n}` }),
      b.line,
    ]);

    // Act
    const jobId = await drop(name, lines.join('\n'));
    const results = parse(await waitForObject(bucket().file(name.replace(/^inbox\//, 'results/')), 120_000));
    const job = await waitForBucketJob(jobId, 60_000);

    // Assert
    expect(results).toHaveLength(lines.length);
    expect(job.counts).toMatchObject({
      total: lines.length,
      succeeded: BAD_LINES.length,
      failed: BAD_LINES.length,
    });
    for (const [n, bad] of BAD_LINES.entries()) {
      const good = results[2 * n]!;
      const line = results[2 * n + 1]!;
      expect(good.response, `good line before ${bad.what}`).toBeDefined();
      expect(line.error?.message, bad.what).toMatch(new RegExp(`line ${2 * n + 2}:`));
      expect(line.error?.message, bad.what).toMatch(bad.says);
    }
  });

  it('reads a gzip bomb as a stream: its one endless line becomes one error line', async () => {
    // 256 MiB of one character without a newline, 256 KiB compressed.
    const name = `inbox/hostile/bomb-${Date.now()}.jsonl.gz`;
    const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024, 0x61), { level: 9 });
    expect(bomb.length).toBeLessThan(1024 * 1024);

    const jobId = await drop(name, bomb);
    const job = await waitForBucketJob(jobId, 120_000);

    expect(job.counts).toMatchObject({ total: 1, failed: 1 });
  });

  it('makes no job of a file with random bytes in place of gzip, beyond its error lines', async () => {
    const name = `inbox/hostile/noise-${Date.now()}.jsonl`;
    const jobId = await drop(name, randomBytes(4096));

    const job = await waitForBucketJob(jobId, 60_000);

    expect(job.counts.succeeded).toBe(0);
    expect(job.counts.failed).toBe(job.counts.total);
  });

  it('rejects a file whose metadata names a model every object has, saying so in the summary', async () => {
    const name = `inbox/hostile/model-${Date.now()}.jsonl`;
    const jobId = await drop(name, '{"prompt":"a"}\n', { model: 'constructor' });

    const summary = JSON.parse(
      (
        await waitForObject(bucket().file(`${name.replace(/^inbox\//, 'results/')}.summary.json`), 60_000)
      ).toString(),
    ) as { status: string; error: { message: string } };

    expect(summary).toMatchObject({
      status: 'failed',
      error: { message: expect.stringMatching(/unknown model constructor/) },
    });
    expect(await jobExists(jobId)).toBe(false);
  });

  it('makes no job of files that are not input: another type, our own output, path tricks', async () => {
    // Arrange: files that must be ignored, then one that must not, so their events have all come.
    const ignored = await Promise.all([
      drop(`inbox/hostile/notes-${Date.now()}.txt`, '{"prompt":"a"}\n'),
      drop(`staging/hostile-${Date.now()}.jsonl`, '{"prompt":"a"}\n'),
      drop(`results/hostile-${Date.now()}.jsonl`, '{"prompt":"a"}\n'),
      drop(`inbox/../staging/hostile-${Date.now()}.jsonl`, '{"prompt":"a"}\n'),
      drop(`inbox//hostile-${Date.now()}.jsonl`, '{"prompt":"a"}\n'),
      drop(`inbox/hostile/folder-${Date.now()}/`, ''),
    ]);
    const marker = await drop(`inbox/hostile/after-${Date.now()}.jsonl`, '{"prompt":"a"}\n');

    // Act
    await waitForBucketJob(marker, 60_000);
    await new Promise((r) => setTimeout(r, 3000));

    // Assert
    for (const id of ignored) expect(await jobExists(id)).toBe(false);
  });

  it('acknowledges events without a job: another bucket, no object, another event type', async () => {
    const otherBucket = { bucket: 'someone-else', name: 'inbox/x.jsonl', generation: '1' };
    const statuses = [
      await postEvent({ data: otherBucket }),
      await postEvent({ data: {} }),
      await postEvent({
        type: 'google.cloud.storage.object.v1.metadataUpdated',
        data: { ...otherBucket, bucket: stack().bucket },
      }),
    ];

    for (const status of statuses) expect(status).toBeLessThan(300);
    expect(await jobExists(jobIdForObject('someone-else', 'inbox/x.jsonl', '1'))).toBe(false);
    expect(await jobExists(jobIdForObject(stack().bucket, 'inbox/x.jsonl', '1'))).toBe(false);
  });
});
