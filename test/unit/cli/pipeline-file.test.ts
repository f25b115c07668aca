import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPipelineFile } from '../../../cli/pipeline-file.js';
import { run } from '../../../cli/program.js';
import type { JobEstimate } from '../../../functions/api/jobs.js';

const YAML = `# extract, then summarise, then judge
steps:
  - name: extract
    model: gemini-2.5-flash
    prompt: "List the facts in: {{input}}"
    config:
      responseMimeType: application/json
      responseJsonSchema: {type: object, properties: {title: {type: string}}}
  - name: answer
    models: [gemini-2.5-flash, gemini-2.5-pro]
    prompt: "Summarise {{extract.title}}"
  - name: judge
    prompt: "Which is better? A: {{answer.0}} B: {{answer.1}}"
onStepError: continue
`;

let dir: string;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fanout-pipeline-file-'));
  await writeFile(file('prompts.jsonl'), '{"key": "a", "prompt": "the sky is blue"}\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a pipeline file', () => {
  it('reads YAML with {steps, onStepError}', async () => {
    // Arrange
    await writeFile(file('p.yaml'), YAML);

    // Act
    const fields = await readPipelineFile(file('p.yaml'));

    // Assert
    expect(fields.onStepError).toBe('continue');
    expect(fields.steps?.map((s) => s.name)).toEqual(['extract', 'answer', 'judge']);
    expect(fields.steps?.[1]?.models).toEqual(['gemini-2.5-flash', 'gemini-2.5-pro']);
    expect(fields.steps?.[0]?.config).toMatchObject({ responseMimeType: 'application/json' });
  });

  it('reads JSON written as just the list of steps', async () => {
    await writeFile(file('p.json'), JSON.stringify([{ name: 'one', prompt: '{{input}}' }]));

    expect(await readPipelineFile(file('p.json'))).toEqual({ steps: [{ name: 'one', prompt: '{{input}}' }] });
  });

  it.each([
    ['steps:\n  - name: Extract\n', /p-bad\.yaml: steps\[0\]\.name: must be 1-40 characters/],
    ['steps:\n  - {name: a, model: m, models: [m]}\n', /steps\[0\]: give model or models, not both/],
    ['steps: [{name: a}]\nonStepErorr: continue\n', /: onStepErorr: unknown field; a pipeline has steps/],
    ['steps: [{name: a, promt: x}]\n', /steps\[0\]\.promt: unknown field; a step has name, model/],
    ['onStepError: continue\n', /p-bad\.yaml: steps: /],
    ['steps: [{name: a}]\nonStepError: skip\n', /onStepError: /],
    ['just text\n', /must be \{steps/],
    ['steps: [\n', /p-bad\.yaml: not YAML or JSON/],
  ])('names the file and the field of a bad one: %j', async (text, message) => {
    await writeFile(file('p-bad.yaml'), text);

    await expect(readPipelineFile(file('p-bad.yaml'))).rejects.toThrow(message);
  });

  it('says when the file is not there', async () => {
    await expect(readPipelineFile(file('missing.yaml'))).rejects.toThrow(
      /cannot read .*missing\.yaml: no such file/,
    );
  });
});

/** A jobs API that answers dry runs and keeps the bodies it was sent. */
function fakeApi(bodies: unknown[]): Server {
  const estimate: JobEstimate = {
    dryRun: true,
    model: 'gemini-2.5-flash',
    mode: 'realtime',
    items: 1,
    tokens: { input: 5, outputAtMost: null, countedBy: 'estimate' },
    costUsd: { standard: 0.00001 },
    costIncludesOutput: false,
    quotaSeconds: 0.06,
  };
  return createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => {
      text += c.toString();
    });
    req.on('end', () => {
      bodies.push({ url: req.url, body: JSON.parse(text) as unknown });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(estimate));
    });
  });
}

function io() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  return { io: { stdout, stderr, env: {} }, out: () => out, err: () => err };
}

describe('submit --pipeline', () => {
  it('merges the steps into the body it sends (a dry run goes through with them)', async () => {
    // Arrange
    await writeFile(file('p.yaml'), YAML);
    const bodies: unknown[] = [];
    const server = fakeApi(bodies);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const cli = io();

    try {
      // Act
      const code = await run(
        ['submit', file('prompts.jsonl'), '--pipeline', file('p.yaml'), '--dry-run', '--url', url],
        cli.io,
      );

      // Assert
      expect(code, cli.err()).toBe(0);
      expect(bodies).toHaveLength(1);
      expect(bodies[0]).toMatchObject({
        url: '/jobs?dryRun=true',
        body: {
          requests: [{ key: 'a', prompt: 'the sky is blue' }],
          onStepError: 'continue',
          steps: [{ name: 'extract' }, { name: 'answer' }, { name: 'judge' }],
        },
      });
      expect(cli.out()).toMatch(/^path {5}realtime/m);
    } finally {
      server.close();
    }
  });

  it('refuses a bad pipeline file with exit code 2 before sending anything', async () => {
    // Arrange
    await writeFile(file('p-bad.yaml'), 'steps: [{name: a, promt: x}]\n');
    const cli = io();

    // Act: no --url; nothing may be contacted.
    const code = await run(['submit', file('prompts.jsonl'), '--pipeline', file('p-bad.yaml')], cli.io);

    // Assert
    expect(code).toBe(2);
    expect(cli.err()).toMatch(/p-bad\.yaml: steps\[0\]\.promt: unknown field/);
  });
});
