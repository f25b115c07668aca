import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { entryKey, type JobView, type ResultEntry } from '../../functions/api/jobs.js';
import {
  cli,
  cliEnv,
  cliInTerminal,
  closedUrl,
  droppingProxy,
  haveScript,
  ROOT,
  startCli,
} from '../helpers/cli.js';
import { stack } from '../helpers/e2e.js';

/**
 * The `gemini-fanout` command as a user runs it: a child process against the local cloud, its output
 * and its exit code. One model (3000 RPM, used lightly elsewhere) and a few items a job.
 */
const MODEL = 'gemini-e2e-intake';
const FAIL = '[[fault:400]]';
/** Held 4 s by the stand-in, then 504 and retried: keeps a job running until it is cancelled. */
const SLOW = '[[fault:timeout]]';
/** 500 and retried with backoff for a few seconds, then failed for good. */
const FLAKY = '[[fault:500]]';

let url: string;
let dir: string;
const jobIds: string[] = [];
/** The 3-prompt job that succeeded, for `status`. */
let okJobId = '';

beforeAll(async () => {
  url = stack().ingestUrl;
  dir = await mkdtemp(join(tmpdir(), 'fanout-cli-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The JSON lines of `--json` output. */
function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function lastJob(stdout: string): JobView {
  const done = jsonLines(stdout).find((l) => l.type === 'done');
  expect(done, stdout).toBeDefined();
  return done!.job as JobView;
}

// Each test starts CLI processes (about half a CPU-second each); on a loaded 2-core machine they wait.
describe.concurrent('gemini-fanout', { timeout: 120_000 }, () => {
  test('every command has --help, with the exit codes; npx finds the bin', async () => {
    // Arrange
    const commands = ['submit', 'status', 'watch', 'results', 'cancel', 'jobs', 'callback-key'];

    // Act
    const [root, viaNpx, ...each] = await Promise.all([
      cli(['--help']),
      new Promise<{ code: number | null; stdout: string }>((ok) => {
        import('node:child_process').then(({ execFile }) =>
          execFile(
            'npx',
            ['--no-install', 'gemini-fanout', '--version'],
            { cwd: ROOT, env: cliEnv() },
            (err, stdout) => ok({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
          ),
        );
      }),
      ...commands.map((c) => cli([c, '--help'])),
    ]);

    // Assert
    expect(root.code).toBe(0);
    for (const c of commands) expect(root.stdout).toContain(c);
    // The connection options are global: listed once, in the program's own options.
    expect(root.stdout.match(/^ {2}--url <url> /gm)?.length ?? 0, root.stdout).toBe(1);
    expect(root.stdout.match(/^ {2}--json /gm)?.length ?? 0, root.stdout).toBe(1);
    expect(root.stdout.indexOf('--url <url>')).toBeLessThan(root.stdout.indexOf('Commands:'));
    expect(viaNpx.code).toBe(0);
    expect(viaNpx.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    each.forEach((run, i) => {
      expect(run.code, commands[i]).toBe(0);
      expect(run.stdout).toContain(`Usage: gemini-fanout ${commands[i]}`);
      expect(run.stdout).toMatch(
        /Exit codes:[\s\S]*0 {4}done[\s\S]*1 {4}a watched job ended with failed items/,
      );
      expect(run.stdout).toMatch(/Global Options:\n[\s\S]*--url <url>[\s\S]*--json/);
    });
  });

  test('--url and --json are global: before the command, after it, or on both sides of its arguments', async () => {
    // Act
    const [before, after, between] = await Promise.all([
      cli(['--url', url, '--json', 'submit', '-p', 'global one', '--model', MODEL, '--watch']),
      cli(['submit', '-p', 'global two', '--model', MODEL, '--watch', '--json', '--url', url]),
      cli(['--json', 'submit', '-p', 'global three', '--url', url, '--model', MODEL]),
    ]);

    // Assert
    for (const run of [before, after]) {
      expect(run.code, run.stderr).toBe(0);
      expect(lastJob(run.stdout).counts).toMatchObject({ total: 1, succeeded: 1 });
      jobIds.push(lastJob(run.stdout).id);
    }
    expect(between.code, between.stderr).toBe(0);
    expect(JSON.parse(between.stdout)).toMatchObject({ total: 1, status: expect.any(String) });
    jobIds.push((JSON.parse(between.stdout) as { id: string }).id);
  });

  test('submit --watch: plain progress lines when stdout is not a terminal, a summary, exit 0', async () => {
    // Act
    const run = await cli([
      'submit',
      '-p',
      'a haiku on queues',
      '-p',
      'TPM in a line',
      '-p',
      'why 429',
      '--model',
      MODEL,
      '--watch',
      '--url',
      url,
    ]);

    // Assert
    expect(run.code, run.stderr).toBe(0);
    const id = /^job (\S+): 3 items queued \(realtime\)/m.exec(run.stdout)?.[1];
    expect(id, run.stdout).toBeDefined();
    jobIds.push(id!);
    okJobId = id!;
    expect(run.stdout).not.toContain('\x1b');
    expect(run.stdout).toMatch(
      /^succeeded 3\/3 ok 3 failed 0 pending 0 \| .* rpm \| .*tokens \d+ in \d+ out \| \$\d\.\d{4} \|/m,
    );
    expect(run.stdout).toMatch(
      new RegExp(`^job ${id} succeeded in \\d+s: 3 items, 3 succeeded, 0 failed, 0 cancelled$`, 'm'),
    );
    expect(run.stdout).toContain(`results: npx gemini-fanout results ${id} --url ${url}`);
  });

  test('a job with failed items exits 1; results --out writes every line in input order', async () => {
    // Arrange
    const file = join(dir, 'mixed.jsonl');
    const prompts = ['one', `two ${FAIL}`, 'three', 'four', `five ${FAIL}`, 'six'];
    await writeFile(file, prompts.map((p, i) => JSON.stringify({ key: `k${i}`, prompt: p })).join('\n'));
    const out = join(dir, 'mixed-results.jsonl');

    // Act
    const watched = await cli(['submit', file, '--model', MODEL, '--watch', '--json', '--url', url]);
    const job = lastJob(watched.stdout);
    const [written, asArray] = await Promise.all([
      cli(['results', job.id, '--out', out, '--url', url]),
      cli(['results', job.id, '--format', 'json', '--url', url]),
    ]);

    // Assert
    jobIds.push(job.id);
    expect(watched.code, watched.stderr).toBe(1);
    expect(jsonLines(watched.stdout)[0]).toMatchObject({ type: 'submitted', job: { total: 6 } });
    expect(job.counts).toMatchObject({ total: 6, succeeded: 4, failed: 2, pending: 0 });
    expect(written.code, written.stderr).toBe(0);
    expect(written.stdout).toContain(`6 results (4 succeeded, 2 failed) written to ${out}`);
    const lines = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ResultEntry);
    expect(lines.map((l) => [l.index, entryKey(l)])).toEqual(prompts.map((_, i) => [i, `k${i}`]));
    expect(lines.map((l) => ('error' in l ? l.error.code : 'ok'))).toEqual([
      'ok',
      400,
      'ok',
      'ok',
      400,
      'ok',
    ]);
    expect(asArray.code).toBe(0);
    expect((JSON.parse(asArray.stdout) as ResultEntry[]).map(entryKey)).toEqual(lines.map(entryKey));
  });

  test('in a terminal: a progress bar redrawn in place, then the summary', async ({ skip }) => {
    if (!(await haveScript())) skip('util-linux script is not installed');

    // Act
    const run = await cliInTerminal([
      'submit',
      '-p',
      'bar one',
      '-p',
      'bar two',
      '--model',
      MODEL,
      '--watch',
      '--url',
      url,
    ]);

    // Assert
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/\u2588+ 2\/2 ok 2 failed 0 pending 0 \|/);
    expect(run.output).toContain('\x1b[1G');
    expect(run.output).toMatch(/job \S+ succeeded in \d+s: 2 items, 2 succeeded, 0 failed, 0 cancelled/);
  });

  test('watch resumes with Last-Event-ID after the stream drops, counting each item once', async () => {
    // Arrange: a job that lasts a few seconds (one item fails only after its retries), watched from
    // its submit on, through a proxy that cuts the first event stream after its first result.
    const proxy = await droppingProxy(url);
    try {
      const prompts = ['r1', 'r2', 'r3', 'r4', 'r5', `r6 ${FLAKY}`];

      // Act
      const run = await cli([
        'submit',
        ...prompts.flatMap((p) => ['-p', p]),
        '--model',
        MODEL,
        '--watch',
        '--json',
        '--url',
        proxy.url,
      ]);
      jobIds.push((jsonLines(run.stdout)[0]!.job as { id: string }).id);

      // Assert
      expect(run.code, run.stderr).toBe(1);
      expect(proxy.eventRequests.length).toBeGreaterThanOrEqual(2);
      expect(proxy.eventRequests[0]).toBeUndefined();
      expect(proxy.lastIdBeforeDrop).toBeDefined();
      expect(proxy.eventRequests[1]).toBe(proxy.lastIdBeforeDrop);
      const notes = jsonLines(run.stdout).filter((l) => l.type === 'note');
      expect(String(notes[0]?.message)).toContain(`resuming after event ${proxy.lastIdBeforeDrop}`);
      const progress = jsonLines(run.stdout).filter((l) => l.type === 'progress');
      expect(Math.max(...progress.map((p) => Number(p.done)))).toBe(6);
      expect(lastJob(run.stdout).counts).toMatchObject({ total: 6, succeeded: 5, failed: 1 });
    } finally {
      await proxy.close();
    }
  });

  test('cancel: the watcher ends with exit 3, and so does watching it again', async () => {
    // Arrange
    const watcher = startCli([
      'submit',
      '-p',
      `c1 ${SLOW}`,
      '-p',
      `c2 ${SLOW}`,
      '--model',
      MODEL,
      '--watch',
      '--url',
      url,
    ]);
    const id = (await watcher.waitForStdout(/^job (\S+): 2 items queued/m, 60_000))[1]!;
    jobIds.push(id);

    // Act
    const cancelled = await cli(['cancel', id, '--url', url]);
    const watched = await watcher.done;
    const again = await cli(['watch', id, '--url', url]);
    const status = await cli(['status', id, '--json', '--url', url]);

    // Assert
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toMatch(new RegExp(`^job ${id} cancelled: \\d items cancelled`, 'm'));
    expect(watched.code, watched.stderr).toBe(3);
    expect(watched.stdout).toMatch(new RegExp(`^job ${id} cancelled in \\d+s: 2 items`, 'm'));
    expect(again.code).toBe(3);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ id, status: 'cancelled' });
  });

  test('--as acts as another identity against the local cloud, and is refused for a deployed URL', async () => {
    // Arrange: the local cloud's issuer, as `npm run dev` names it in .local/stack.json.
    const env = cliEnv({ FANOUT_ID_ISSUER: stack().idIssuerUrl });
    const submitted = await cli(
      ['--as', 'cli-alice@example.com', 'submit', '-p', 'mine', '--model', MODEL, '--json', '--url', url],
      { env },
    );
    const { id } = JSON.parse(submitted.stdout) as { id: string };

    // Act
    const [asAlice, asBob, deployed, notAnEmail] = await Promise.all([
      cli(['status', id, '--json', '--url', url, '--as', 'cli-alice@example.com'], { env }),
      cli(['status', id, '--url', url, '--as', 'cli-bob@example.com'], { env }),
      cli(['status', id, '--url', 'https://ingest.invalid', '--as', 'cli-alice@example.com'], { env }),
      cli(['status', id, '--url', url, '--as', 'nobody'], { env }),
    ]);

    // Assert
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(asAlice.code, asAlice.stderr).toBe(0);
    expect(JSON.parse(asAlice.stdout)).toMatchObject({ id });
    expect(asBob.code).toBe(2);
    expect(asBob.stderr).toContain('answered 404');
    expect(deployed.code).toBe(2);
    expect(deployed.stderr).toContain('--as works only against the local cloud');
    expect(notAnEmail.code).toBe(2);
  });

  test('bad input exits 2 with a one-line reason', async () => {
    // Arrange
    const badFile = join(dir, 'bad.jsonl');
    await writeFile(badFile, '{"prompt": "fine"}\n{"prompt": \n');

    // Act
    const runs = await Promise.all([
      cli(['submit', '--url', url]),
      cli(['submit', '-p', 'x', '--mode', 'fastest', '--url', url]),
      cli(['submit', join(dir, 'missing.jsonl'), '--url', url]),
      cli(['submit', badFile, '--url', url]),
      cli(['submit', '-p', '', '--url', url]),
      cli(['status', 'no-such-job', '--url', url]),
      cli(['jobs', '--limit', '0', '--url', url]),
      cli(['frobnicate']),
    ]);

    // Assert
    for (const run of runs) expect(run.code, run.stderr).toBe(2);
    const [nothing, mode, missing, bad, empty, unknownJob] = runs;
    expect(nothing!.stderr).toContain('nothing to submit');
    expect(mode!.stderr).toContain("'fastest' is invalid");
    expect(missing!.stderr).toContain('no such file');
    expect(bad!.stderr).toContain('bad.jsonl:2: not valid JSON');
    expect(empty!.stderr).toMatch(/answered 400: .*\n {2}requests\[0\]\.prompt: must not be empty/);
    expect(unknownJob!.stderr).toContain('answered 404');
  });

  test('an unreachable API exits 4; a deployed URL without Google credentials exits 5', async () => {
    // Arrange
    const nowhere = await closedUrl();
    const home = await mkdtemp(join(dir, 'home-'));
    const noCredentials = cliEnv({ HOME: home, CLOUDSDK_CONFIG: home, GOOGLE_APPLICATION_CREDENTIALS: '' });

    // Act
    const [status, submit, fromEnv, deployed] = await Promise.all([
      cli(['status', 'abc', '--url', nowhere]),
      cli(['submit', '-p', 'x', '--watch', '--url', nowhere]),
      cli(['watch', 'abc'], { env: cliEnv({ FANOUT_URL: nowhere }) }),
      // .invalid never resolves; the token is asked for first, and there is none.
      cli(['status', 'abc', '--url', 'https://ingest.invalid'], { env: noCredentials }),
    ]);

    // Assert
    expect(status.code, status.stderr).toBe(4);
    expect(submit.code, submit.stderr).toBe(4);
    expect(fromEnv.code, fromEnv.stderr).toBe(4);
    expect(status.stderr).toMatch(/^gemini-fanout: .*fetch failed/);
    expect(deployed.code, deployed.stderr).toBe(5);
    expect(deployed.stderr).toContain('no Google identity token for https://ingest.invalid');
  });
});

describe('gemini-fanout jobs and status', () => {
  test("jobs lists the caller's jobs newest first; status shows one with the model's quota", async () => {
    // Act: page on until this file's jobs are all seen (other files' jobs may be newer).
    const pages: Array<{ jobs: JobView[]; nextPageToken?: string }> = [];
    for (let token: string | undefined, n = 0; n === 0 || (token && n < 10); n++) {
      const page = await cli([
        'jobs',
        '--limit',
        '100',
        '--json',
        '--url',
        url,
        ...(token ? ['--page-token', token] : []),
      ]);
      expect(page.code, page.stderr).toBe(0);
      pages.push(JSON.parse(page.stdout));
      token = pages.at(-1)!.nextPageToken;
      if (jobIds.every((id) => pages.some((p) => p.jobs.some((j) => j.id === id)))) break;
    }
    const [table, status, globalsFirst] = await Promise.all([
      cli(['jobs', '--url', url]),
      cli(['status', okJobId, '--url', url]),
      cli(['--url', url, 'status', okJobId]),
    ]);

    // Assert
    const jobs = pages.flatMap((p) => p.jobs);
    for (const id of jobIds) expect(jobs.map((j) => j.id)).toContain(id);
    const created = jobs.map((j) => j.createdAt);
    expect([...created].sort().reverse()).toEqual(created);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID +STATUS +MODE +MODEL +DONE +FAILED +COST +CREATED$/m);
    expect(table.stdout).toMatch(
      /^your owner prefix: [0-9a-f]{32} \(media: gs:\/\/\S+\/media\/[0-9a-f]{32}\//m,
    );
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^status +succeeded \\(realtime, ${MODEL}\\)$`, 'm'));
    expect(status.stdout).toMatch(/^items +3\/3 done: 3 succeeded, 0 failed, 0 cancelled, 0 pending$/m);
    expect(status.stdout).toMatch(/^quota +3,000 RPM, 4M TPM$/m);
    expect(globalsFirst.code, globalsFirst.stderr).toBe(0);
    expect(globalsFirst.stdout).toBe(status.stdout);
  });
});
