import { describe, expect, it } from 'vitest';
import { entryKey, type ResultEntry } from '../../functions/api/jobs.js';
import { jobIdForObject } from '../../functions/intake/handler.js';
import { createJob, jobsClient, readEvents, resultsJsonl, stack, waitForJob } from '../helpers/e2e.js';
import { storageClientFor, waitForObject } from '../helpers/storage.js';

// The Batch file formats people already have, through the local cloud: the seed's OpenAI-style
// `{"custom_id", "request": {"model", "contents"}}` file dropped into the bucket, and `custom_id`
// requests through the jobs API; and structured output, checked and repaired, end to end.

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

/** A line in the seed's format: `custom_id`, and the model inside the request. */
const seedLine = (id: string, model: string, text: string) =>
  JSON.stringify({ custom_id: id, request: { model, contents: [{ role: 'user', parts: [{ text }] }] } });

describe('the seed’s Batch file, dropped into the bucket', () => {
  it('runs through the Batch API on the first line’s model; results carry custom_id; another model is an error line', async () => {
    // 60 lines: gemini-e2e-intake sends 50 lines or more to the Batch API. No metadata: the model is
    // the first line's. Line 3 names another model.
    const name = `inbox/e2e/seed-${Date.now()}.jsonl`;
    const input = Array.from({ length: 60 }, (_, i) =>
      seedLine(
        `req-${i + 1}`,
        i === 2 ? 'models/gemini-2.5-flash' : i % 2 ? 'gemini-e2e-intake' : 'models/gemini-e2e-intake',
        `Summarise chapter ${i + 1} of the book.`,
      ),
    ).join('\n');
    await bucket().file(name).save(input, { contentType: 'application/jsonl' });
    const [meta] = await bucket().file(name).getMetadata();
    const jobId = jobIdForObject(stack().bucket, name, String(meta.generation));

    const results = lines(await waitForObject(bucket().file(name.replace(/^inbox\//, 'results/')), 90_000));

    expect(results.map((r) => [r.custom_id, r.index])).toEqual(
      Array.from({ length: 60 }, (_, i) => [`req-${i + 1}`, i]),
    );
    expect(results.every((r) => !('key' in r))).toBe(true);
    expect(results.filter((r) => 'error' in r).map((r) => r.custom_id)).toEqual(['req-3']);
    expect((results[2]!.error as { message: string }).message).toMatch(
      /line 3: request.model gemini-2.5-flash is not the job's model gemini-e2e-intake/,
    );
    expect(JSON.stringify(results[0]!.response)).toContain('Summarise chapter 1 of the book.');
    const summary = JSON.parse(
      (
        await waitForObject(bucket().file(`${name.replace(/^inbox\//, 'results/')}.summary.json`), 30_000)
      ).toString(),
    ) as Record<string, unknown>;
    expect(summary).toMatchObject({
      job: jobId,
      model: 'gemini-e2e-intake',
      mode: 'batch',
      counts: { total: 60, succeeded: 59, failed: 1 },
      paths: { batch: 59 },
    });
  });
});

describe('custom_id through the jobs API', () => {
  it('names the key custom_id in the results page, the JSONL and the event stream', async () => {
    const id = await createJob({
      requests: [
        {
          custom_id: 'req-1',
          request: { model: 'models/gemini-2.5-flash', contents: [{ parts: [{ text: 'one' }] }] },
        },
        { key: 'plain', prompt: 'two' },
      ],
    });
    await waitForJob(id, 30_000);

    const page = await jobsClient().resultsPage(id);
    const jsonl = await resultsJsonl(id);
    const events = await readEvents(id);

    const keyed = (entries: ResultEntry[]) =>
      entries.map((e) => ('custom_id' in e ? ['custom_id', e.custom_id] : ['key', e.key]));
    expect(keyed(page.results)).toEqual([
      ['custom_id', 'req-1'],
      ['key', 'plain'],
    ]);
    expect(keyed(jsonl)).toEqual(keyed(page.results));
    expect(events.results.map((r) => entryKey(r.data)).sort()).toEqual(['plain', 'req-1']);
    expect(events.results.find((r) => 'custom_id' in r.data)?.data).toMatchObject({
      custom_id: 'req-1',
      index: 0,
    });
  });
});

describe('structured output, checked', () => {
  it('records a matching answer, repairs one that misses once, and fails one that misses twice', async () => {
    const schema = {
      type: 'object',
      properties: { echo: { type: 'string' }, hash: { type: 'string' }, media: { type: 'integer' } },
      required: ['echo', 'hash', 'media'],
    };
    const [jsonSchemaJob, openApiJob] = await Promise.all([
      createJob({
        config: { responseMimeType: 'application/json', responseJsonSchema: schema },
        requests: [
          { key: 'good', prompt: 'Extract the title.' },
          { key: 'once', prompt: 'Extract the title. [[fault:bad-json-once]]' },
          { key: 'twice', prompt: 'Extract the title. [[fault:bad-json]]' },
        ],
      }),
      // Gemini's own Schema (responseSchema, upper-case types) instead of JSON Schema.
      createJob({
        config: {
          responseMimeType: 'application/json',
          responseSchema: { type: 'OBJECT', properties: { echo: { type: 'STRING' } }, required: ['echo'] },
        },
        prompts: ['Extract the year. [[fault:bad-json-once]]'],
      }),
    ]);
    const [job, openApi] = await Promise.all([
      waitForJob(jsonSchemaJob, 60_000),
      waitForJob(openApiJob, 60_000),
    ]);
    const results = [...(await resultsJsonl(jsonSchemaJob)), ...(await resultsJsonl(openApiJob))];
    const byKey = new Map(results.map((r) => [entryKey(r), r as Record<string, unknown>]));

    expect(job.counts).toMatchObject({ total: 3, succeeded: 2, failed: 1 });
    expect(openApi.counts).toMatchObject({ total: 1, succeeded: 1 });
    for (const key of ['good', 'once', '0']) {
      const response = byKey.get(key)!.response as {
        candidates: Array<{ content: { parts: Array<{ text: string }> } }>;
      };
      expect(JSON.parse(response.candidates[0]!.content.parts[0]!.text), key).toMatchObject({
        echo: expect.any(String),
      });
    }
    expect(byKey.get('twice')!.error).toEqual({
      code: 422,
      status: 'SCHEMA_MISMATCH',
      message: expect.stringMatching(/nor did the one asked for again: the answer is not JSON/),
    });
  });
});
