import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobIdForObject } from '../../functions/intake/handler.js';
import { cli, cliEnv } from '../helpers/cli.js';
import { stack, waitForBucketJob } from '../helpers/e2e.js';
import { storageClientFor, waitForObject } from '../helpers/storage.js';

/**
 * A pipeline's surfaces through the local cloud: `submit --pipeline FILE --watch` (the step lines
 * while watching, the per-step summary, the pipeline result lines) and a bucket file with a pipeline
 * header (its results file: a line per item, none for the header). The pipeline engine (a job's
 * `steps`: ingest, per-step units, chaining, the view's `steps`) runs them; these check what users
 * see of it. The stand-in answers `echo: <prompt> #hash` (`{"echo", "hash", "media"}` as JSON), so a
 * step's answer shows the prompt its template made.
 */
const MODEL = 'gemini-e2e-intake';
const OTHER = 'gemini-2.5-flash';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fanout-pipeline-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lines = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** The text of a GenerateContentResponse's first candidate. */
const textOf = (response: unknown) =>
  (response as { candidates: Array<{ content: { parts: Array<{ text: string }> } }> }).candidates[0]!.content
    .parts[0]!.text;

describe('pipelines, as users see them', { timeout: 120_000 }, () => {
  it('submit --pipeline FILE --watch: a line per step while watching, each step in the summary, steps in every result line', async () => {
    // Arrange
    await writeFile(
      join(dir, 'pipeline.yaml'),
      `steps:
  - name: first
    prompt: "first: {{input}}"
  - name: second
    prompt: "second: {{first}}"
  - name: third
    models: [${MODEL}, ${OTHER}]
    prompt: "third: {{second}}"
`,
    );
    await writeFile(
      join(dir, 'prompts.jsonl'),
      ['a', 'b', 'c'].map((k) => JSON.stringify({ key: k, prompt: `item ${k}` })).join('\n'),
    );
    const out = join(dir, 'results.jsonl');

    // Act
    const run = await cli(
      [
        'submit',
        'prompts.jsonl',
        '--pipeline',
        'pipeline.yaml',
        '--model',
        MODEL,
        '--watch',
        '--out',
        out,
        '--url',
        stack().ingestUrl,
      ],
      { cwd: dir, env: cliEnv() },
    );

    // Assert
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    // The watch (stdout is a pipe: plain lines) and the summary name every step.
    expect(run.stdout).toMatch(/^ {2}step first \(gemini-e2e-intake\) \d+\/3 ok/m);
    expect(run.stdout).toMatch(
      /^step first \(gemini-e2e-intake\): 3 succeeded, 0 failed, 0 cancelled \| tokens [\d,]+ in, [\d,]+ out \| \$/m,
    );
    expect(run.stdout).toMatch(
      /^step third \(gemini-e2e-intake \/\/ gemini-2\.5-flash\): 6 succeeded, 0 failed/m,
    );
    expect(run.stdout).toMatch(/^ {2}gemini-2\.5-flash: 3 succeeded, 0 failed \| tokens/m);
    const results = lines(await readFile(out, 'utf8'));
    expect(results.map((r) => [r.key, r.index])).toEqual([
      ['a', 0],
      ['b', 1],
      ['c', 2],
    ]);
    for (const r of results) {
      const steps = r.steps as Record<string, unknown>;
      expect(Object.keys(steps)).toEqual(['first', 'second', 'third']);
      expect(steps.first).toMatchObject({ model: MODEL });
      expect((steps.third as Array<{ model: string }>).map((b) => b.model)).toEqual([MODEL, OTHER]);
      // Each template read the step before it: third's prompt held second's answer, which held first's.
      const second = textOf((steps.second as { response: unknown }).response);
      expect(second).toMatch(new RegExp(`^echo: second: echo: first: item ${r.key} #`));
      // The line's response is the last step's: a fan-out's list of answers.
      expect((r.response as unknown[]).map(textOf)).toEqual(
        (steps.third as Array<{ response: unknown }>).map((b) => textOf(b.response)),
      );
    }
  });

  it('a bucket file with a pipeline header: a result line per item, none for the header, steps in each; a bad line is its error line', async () => {
    // Arrange
    const s = stack();
    const bucket = storageClientFor(s.storageEmulatorHost, s.projectId).bucket(s.bucket);
    const name = `inbox/e2e/pipeline-${Date.now()}.jsonl`;
    const header = {
      steps: [
        {
          name: 'extract',
          prompt: 'extract: {{input}}',
          config: {
            responseMimeType: 'application/json',
            responseJsonSchema: {
              type: 'object',
              required: ['echo'],
              properties: { echo: { type: 'string' } },
            },
          },
        },
        { name: 'judge', prompt: 'judge: {{extract.echo}}' },
      ],
    };
    const input = [
      JSON.stringify(header),
      JSON.stringify({ key: 'x', prompt: 'the sky' }),
      JSON.stringify({ prompt: 'the sea' }),
      // A bad last line: an item born failed, which runs no step (and step 0's planning still ends).
      'not json',
    ].join('\n');
    await bucket.file(name).save(input, {
      contentType: 'application/jsonl',
      metadata: { metadata: { model: MODEL } },
    });
    const [meta] = await bucket.file(name).getMetadata();
    const jobId = jobIdForObject(s.bucket, name, String(meta.generation));

    // Act
    const job = await waitForBucketJob(jobId, 60_000);
    const results = lines(
      (await waitForObject(bucket.file(name.replace(/^inbox\//, 'results/')), 60_000)).toString('utf8'),
    );

    // Assert
    expect(job.status).toBe('succeeded');
    expect(job.counts).toMatchObject({ total: 3, succeeded: 2, failed: 1 });
    expect(job.steps?.map((step) => [step.name, step.counts.total, step.counts.succeeded])).toEqual([
      ['extract', 3, 2],
      ['judge', 3, 2],
    ]);
    // The header is line 1: the key-less item on line 3 is keyed `3`; indexes count items.
    expect(results.map((r) => [r.key, r.index])).toEqual([
      ['x', 0],
      ['3', 1],
      ['4', 2],
    ]);
    expect(results[2]).toMatchObject({ error: { code: 400, message: expect.stringMatching(/^line 4: /) } });
    expect(results[2]!.steps).toBeUndefined();
    const judged = textOf((results[0]!.steps as { judge: { response: unknown } }).judge.response);
    // judge read extract's JSON field `echo` (the stand-in's echo of extract's prompt).
    expect(judged).toMatch(/^echo: judge: extract: the sky #/);
    expect(textOf(results[0]!.response)).toBe(judged);
  });
});
