import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { describeJob, summarise } from '../../../cli/describe.js';
import { JobProgress } from '../../../cli/progress.js';
import { createRenderer } from '../../../cli/render.js';
import { stepSnapshots } from '../../../cli/steps.js';
import { jobViewFixture } from '../../fixtures/job-view.js';
import { pipelineViewFixture } from '../../fixtures/pipeline-view.js';

const NOW = Date.parse('2025-01-01T00:00:10.000Z');

/** A stream that says it is a terminal 200 columns wide, and keeps what was written. */
function terminal() {
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 200 });
  let written = '';
  stream.on('data', (c: Buffer) => {
    written += c.toString();
  });
  // The bars' control sequences (cursor moves, clear to end of line) are not what a user reads.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping terminal escapes
  const text = () => written.replace(/\u001b(\[[?0-9;]*[A-Za-z]|[78])/g, '');
  return { stream, text };
}

function lines() {
  let written = '';
  return { out: { write: (s: string) => (written += s) }, text: () => written };
}

describe('the CLI on a pipeline', () => {
  it('takes each step from the job view, in step order, counting units (items × branches)', () => {
    const steps = stepSnapshots(pipelineViewFixture());

    expect(steps.map((s) => [s.name, s.done, s.total])).toEqual([
      ['extract', 10, 10],
      ['answer', 11, 20],
      ['judge', 2, 10],
    ]);
    expect(stepSnapshots(jobViewFixture())).toEqual([]);
  });

  it('draws a bar per step under the job bar on a terminal', async () => {
    // Arrange
    const term = terminal();
    const renderer = createRenderer('tty', term.stream, term.stream);
    const progress = new JobProgress(pipelineViewFixture(), NOW);

    // Act
    renderer.update(progress.snapshot(NOW));
    renderer.stop(progress.snapshot(NOW));

    // Assert
    const rows = term.text().split('\n');
    const row = (name: string) => rows.find((r) => r.startsWith(name));
    expect(row('job ')).toMatch(/^job {6}█{7}░{17} running 3\/10 ok 2 failed 1 pending 7 \|/);
    expect(row('extract')).toMatch(/^extract {2}█{24} gemini-2\.5-flash 10\/10 ok 9 failed 1 pending 0 \|/);
    expect(row('answer')).toMatch(
      /^answer {3}█{13}░{11} gemini-2\.5-flash \/\/ gemini-2\.5-pro 11\/20 ok 11 failed 0 pending 9 \| tokens 2\.2k in 1\.1k out \| \$0\.0155$/,
    );
    expect(row('judge')).toMatch(/^judge {4}█{5}░{19} gemini-2\.5-pro 2\/10/);
  });

  it('keeps the single bar for a job without steps', () => {
    const term = terminal();
    const renderer = createRenderer('tty', term.stream, term.stream);
    const progress = new JobProgress(jobViewFixture(), NOW);

    renderer.update(progress.snapshot(NOW));
    renderer.stop(progress.snapshot(NOW));

    expect(term.text()).toMatch(/^█{8}░{16} 1\/3 ok 1 failed 0 pending 2 \|/);
    expect(term.text()).not.toMatch(/step|extract/);
  });

  it('prints a line per step under the job line in a log (plain output)', () => {
    // Arrange
    const out = lines();
    const renderer = createRenderer('plain', out.out, out.out);
    const progress = new JobProgress(pipelineViewFixture(), NOW);

    // Act
    renderer.update(progress.snapshot(NOW));

    // Assert
    expect(out.text().split('\n').slice(0, 4)).toEqual([
      expect.stringMatching(/^running 3\/10 ok 2 failed 1 pending 7 \|/),
      '  step extract (gemini-2.5-flash) 10/10 ok 9 failed 1 pending 0 | tokens 1.2k in 300 out | $0.0012',
      '  step answer (gemini-2.5-flash // gemini-2.5-pro) 11/20 ok 11 failed 0 pending 9 | tokens 2.2k in 1.1k out | $0.0155',
      '  step judge (gemini-2.5-pro) 2/10 ok 2 failed 0 pending 8 | tokens 400 in 80 out | $0.0013',
    ]);
  });

  it('prints the last state again when only a step moved', () => {
    const out = lines();
    const renderer = createRenderer('plain', out.out, out.out);
    const view = pipelineViewFixture();
    const progress = new JobProgress(view, NOW);
    renderer.update(progress.snapshot(NOW));
    const judged = view.steps!.map((s) =>
      s.name === 'judge' ? { ...s, counts: { ...s.counts, succeeded: 3, pending: 7 } } : s,
    );
    progress.job({ ...view, steps: judged }, NOW);

    renderer.stop(progress.snapshot(NOW));

    expect(out.text()).toMatch(/step judge \(gemini-2\.5-pro\) 3\/10 ok 3/);
  });

  it("ends a watch with each step's counts, tokens and cost, and each model's share of a fan-out", () => {
    const text = summarise(pipelineViewFixture({ status: 'succeeded' }), [], 'gemini-fanout results job-1');

    expect(text).toContain(
      'step extract (gemini-2.5-flash): 9 succeeded, 1 failed, 0 cancelled | tokens 1,200 in, 300 out | $0.0012',
    );
    expect(text).toContain(
      'step answer (gemini-2.5-flash // gemini-2.5-pro): 11 succeeded, 0 failed, 0 cancelled, 9 pending | tokens 2,200 in, 1,100 out | $0.0155\n' +
        '  gemini-2.5-flash: 6 succeeded, 0 failed | tokens 1,200 in, 600 out | $0.0018\n' +
        '  gemini-2.5-pro: 5 succeeded, 0 failed | tokens 1,000 in, 500 out | $0.0137',
    );
    expect(text).toMatch(/\$0\.0013\nresults: gemini-fanout results job-1$/);
  });

  it('lists the steps in `status`, and nothing of them for a job without steps', () => {
    expect(describeJob(pipelineViewFixture(), NOW)).toMatch(
      /^step {5}judge \(gemini-2\.5-pro\): 2 succeeded, 0 failed, 0 cancelled, 8 pending \|/m,
    );
    expect(describeJob(pipelineViewFixture(), NOW)).toMatch(/^ {9} {2}gemini-2\.5-pro: 5 succeeded/m);
    expect(describeJob(jobViewFixture(), NOW)).not.toMatch(/^step/m);
  });
});
