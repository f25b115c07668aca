import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ResultEntry } from '../../functions/api/jobs.js';
import { sampleMedia, uploadSampleMedia } from '../../infra/local/sample-media.js';
import { checkoutLookalike, cliEnv, ROOT, shell } from '../helpers/cli.js';
import { jobsClient, stack } from '../helpers/e2e.js';

/**
 * The README's Quick start and command-line sections, run as written against the local cloud: the
 * commands are read from README.md's code blocks under those headings when the test runs, so the
 * README cannot drift from what works. Every command must exit 0 and every item of every job the
 * examples create must succeed (304 of 304 for examples/prompts.jsonl).
 *
 * What stands in for what:
 * - `npm run dev` ("With `npm run dev` running"): the suite's local cloud (test/helpers/global-setup.ts),
 *   booted by startStack like `npm run dev`, which put the sample images where the sample set points;
 *   the first tests check them there, and the sample job's image items need them.
 * - `localhost:8580`, `127.0.0.1:8580` (`npm run dev`'s port) → the suite's ingest port. The CLI finds
 *   the local cloud through FANOUT_URL, not `.local/stack.json`: a developer's own `npm run dev`
 *   writes that file, and a test must not overwrite it.
 * - `JOB_ID` → the job the README's latest `POST /jobs` or `submit` created.
 * - Commands run with bash in a directory that looks like the checkout (checkoutLookalike), so
 *   `--out results.jsonl` is written there, not into the repository.
 * - Some commands are not run at all: {@link NOT_RUN} says which and why.
 *
 * The e2e quotas give the README's model (gemini-2.5-flash, the default) 3,000 RPM, against 1,000 in
 * infra/quotas.json, so the 304-prompt example takes seconds here, with the README's commands as they are.
 */

const SECTIONS = ['## Quick start', '### The command line: `npx gemini-fanout`'];
/** Commands this test runs; every other README command must be in NOT_RUN. */
const RUNS = /^(curl|npx gemini-fanout)\s/;
/** README commands that cannot run inside this test, and why. */
const NOT_RUN: Array<{ command: RegExp; why: string }> = [
  {
    command: /^npm ci$/,
    why: 'installs the dependencies this test already runs on; reinstalling node_modules would pull them from under the running suite',
  },
  {
    command: /^npm start(\s|$)/,
    why: "boots a second local cloud of its own (another Firestore emulator and functions host) beside the suite's; it runs the same startStack and the same `submit FILE --watch --out` as the command-line block run here",
  },
  { command: /^npm test$/, why: 'the whole suite, this test among it' },
  { command: /^npm run test:unit$/, why: 'the unit tier, which the same npm test runs (vitest.config.ts)' },
];
/** `npm run dev`'s ingest address, as the README writes it. */
const DEV_ADDRESS = /\b(localhost|127\.0\.0\.1):8580\b/g;

interface ReadmeCommand {
  /** The command as written, continuation lines joined and a trailing comment removed. */
  line: string;
  /** After a `$ ` command of a transcript: the output lines the README shows. */
  shown: string[];
}

interface ReadmeBlock {
  name: string;
  commands: ReadmeCommand[];
}

/** The fenced code blocks of a README section (from its heading to the next of the same or a higher level). */
function sectionBlocks(readme: string, heading: string): string[] {
  const lines = readme.split('\n');
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`README.md has no heading "${heading}"`);
  const level = heading.indexOf(' ');
  const blocks: string[] = [];
  let fence: string[] | undefined;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('```')) {
      if (fence) blocks.push(fence.join('\n'));
      fence = fence ? undefined : [];
    } else if (fence) fence.push(line);
    else if (/^#{1,6} /.test(line) && line.indexOf(' ') <= level) break;
  }
  return blocks;
}

/** A block's commands: each line (a transcript's `$ ` lines, with the output shown after each). */
function commandsOf(block: string): ReadmeCommand[] {
  const lines = block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((l) => l.trim());
  const bare = (l: string) => l.replace(/\s+#\s.*$/, '').trim();
  if (!lines.some((l) => l.startsWith('$ '))) return lines.map((l) => ({ line: bare(l), shown: [] }));
  const commands: ReadmeCommand[] = [];
  for (const l of lines) {
    if (l.startsWith('$ ')) commands.push({ line: bare(l.slice(2)), shown: [] });
    else if (commands.length) commands.at(-1)!.shown.push(l);
    else throw new Error(`a transcript shows output before its first command: ${l}`);
  }
  return commands;
}

function readmeBlocks(): ReadmeBlock[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return SECTIONS.flatMap((heading) =>
    sectionBlocks(readme, heading).map((block, i) => ({
      name: `${heading.replace(/^#+ /, '')}, block ${i + 1}`,
      commands: commandsOf(block),
    })),
  );
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A transcript line as a pattern for the command's real output, or undefined for the progress bar
 * (drawn on a terminal only: test/e2e/cli.test.ts checks it there). A job id written short
 * (`39288a28…`) stands for any id, a wall time for any; on the `tokens` line every figure may differ
 * (the stand-in's answers, the e2e quota); every other word and figure must be as shown.
 */
function shownPattern(line: string, port: string): RegExp | undefined {
  if (/^[█░]/.test(line)) return undefined;
  let p = escapeRegExp(line.replace(DEV_ADDRESS, `$1:${port}`))
    .replace(/[0-9a-f]+…/g, '\\S+')
    .replace(/ in \d+s:/, ' in [\\dhms]+:');
  if (line.startsWith('tokens ')) p = p.replace(/\d[\d,]*(?:\\\.\d+)?/g, '[\\d,]+(?:\\.\\d+)?');
  return new RegExp(`^${p}$`, 'm');
}

/** The id of a job the output says was created: a `POST /jobs` answer or `submit`'s first line. */
function createdJob(stdout: string): string | undefined {
  const line = /^job (\S+): \d+ items queued/m.exec(stdout);
  if (line) return line[1];
  try {
    const body = JSON.parse(stdout) as { id?: unknown; links?: unknown };
    return typeof body.id === 'string' && body.links ? body.id : undefined;
  } catch {
    return undefined;
  }
}

/** Every JSON line of the output (event-stream `data:` lines included) that is an error. */
function errorLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => {
    try {
      const value = JSON.parse(l.replace(/^data: /, '')) as unknown;
      return typeof value === 'object' && value !== null && 'error' in value;
    } catch {
      return false;
    }
  });
}

const blocks = readmeBlocks();
let dir: string;
let env: NodeJS.ProcessEnv;
let port: string;

beforeAll(async () => {
  dir = await checkoutLookalike(await mkdtemp(join(tmpdir(), 'fanout-readme-')));
  // The local cloud's identity provider too (`--as`), which `npm run dev` names in .local/stack.json.
  env = { ...cliEnv(), FANOUT_URL: stack().ingestUrl, FANOUT_ID_ISSUER: stack().idIssuerUrl };
  port = new URL(stack().ingestUrl).port;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the README, as a new user runs it', () => {
  test('each command of the Quick start and command-line blocks is run below, or not run for a stated reason', ({
    annotate,
  }) => {
    // Arrange
    const commands = blocks.flatMap((b) => b.commands.map((c) => c.line));

    // Act
    const unaccounted = commands.filter((c) => !RUNS.test(c) && !NOT_RUN.some((n) => n.command.test(c)));
    const skipped = commands.flatMap((c) => NOT_RUN.filter((n) => n.command.test(c)).map((n) => [c, n.why]));

    // Assert
    expect(unaccounted, 'run them here, or add them to NOT_RUN with the reason').toEqual([]);
    for (const n of NOT_RUN)
      expect(
        commands.some((c) => n.command.test(c)),
        String(n.command),
      ).toBe(true);
    expect(commands.filter((c) => RUNS.test(c)).length).toBeGreaterThanOrEqual(3);
    for (const [command, why] of skipped) annotate(`not run: ${command} (${why})`);
  });

  test('the local cloud holds the sample images where examples/prompts.jsonl points; starting again uploads nothing', async () => {
    // Arrange: startStack (npm run dev's) uploaded them when the suite's local cloud started.
    const storage = new Storage({ projectId: stack().projectId, apiEndpoint: stack().storageEmulatorHost });
    const media = sampleMedia();
    const generations = async () =>
      Promise.all(
        media.map(async (m) => (await storage.bucket(m.bucket).file(m.name).getMetadata())[0].generation),
      );
    const before = await generations();

    // Act
    const again = await uploadSampleMedia(storage, media);

    // Assert
    expect(media.map((m) => m.name).sort()).toEqual(
      ['blue', 'green', 'red', 'yellow'].map((c) => `media/samples/images/${c}.png`),
    );
    expect(new Set(media.map((m) => m.bucket))).toEqual(new Set(['fanout-local-fanout']));
    for (const m of media) {
      const [bytes] = await storage.bucket(m.bucket).file(m.name).download();
      expect(bytes.equals(readFileSync(m.file)), m.name).toBe(true);
    }
    expect(again).toEqual({ uploaded: 0, kept: media.length });
    expect(await generations()).toEqual(before);
  });

  describe.sequential('each runnable block, as written', { timeout: 300_000 }, () => {
    let jobId: string | undefined;
    for (const block of blocks.filter((b) => b.commands.some((c) => RUNS.test(c.line)))) {
      test(`${block.name}: ${block.commands.map((c) => c.line.split(' ').slice(0, 3).join(' ')).join('; ')}`, async () => {
        const outs: string[] = [];
        for (const command of block.commands.filter((c) => RUNS.test(c.line))) {
          // Arrange
          if (command.line.includes('JOB_ID')) expect(jobId, 'JOB_ID before any job').toBeDefined();
          const line = command.line.replace(DEV_ADDRESS, `$1:${port}`).replaceAll('JOB_ID', jobId ?? '');

          // Act
          const run = await shell(line, { cwd: dir, env });

          // Assert
          const said = `$ ${line}\n${run.stdout}\n${run.stderr}`;
          expect(run.code, said).toBe(0);
          expect(errorLines(run.stdout), said).toEqual([]);
          let from = 0;
          for (const shown of command.shown) {
            const pattern = shownPattern(shown, port);
            if (!pattern) continue;
            const m = pattern.exec(run.stdout.slice(from));
            expect(m, `README shows "${shown}"; ${said}`).not.toBeNull();
            from += m!.index + m![0].length;
          }
          jobId = createdJob(run.stdout) ?? jobId;
          const out = /--out (\S+)/.exec(line)?.[1];
          if (out) outs.push(out);
        }

        // Assert: the block's job ended with every item succeeded, and so do the files it wrote.
        const job = await jobsClient().get(jobId!);
        expect(job.status).toBe('succeeded');
        expect(job.counts).toMatchObject({
          succeeded: job.counts.total,
          failed: 0,
          cancelled: 0,
          pending: 0,
        });
        for (const out of outs) {
          const lines = (await readFile(join(dir, out), 'utf8'))
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as ResultEntry);
          expect(lines.map((l) => l.index)).toEqual([...Array(job.counts.total).keys()]);
          expect(lines.filter((l) => !('response' in l))).toEqual([]);
        }
      });
    }
  });
});
